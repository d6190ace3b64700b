"""The policy engine: CEL rules over the evidence, weighed into an action, a score and reasons.

Rules are compiled once at load (``cel``, the Python bindings of the Rust CEL implementation:
see docs/cel-engines.md for why); a request costs one context build and one evaluation per rule.
What a rule sees (all keys always present; unknown is ``""``, ``0`` or ``false``):

- ``ip``: ``present``, ``valid``, ``known``, ``reserved``, ``country``, ``countries`` (every
  source's answer), ``disagreement``, ``hosting``, ``vpn``, ``tor``, ``proxy``, ``relay``;
- ``restricted``: the jurisdiction codes of the policy (``ip.country in restricted``);
- ``evidence``: the codes found; ``confidence``: code -> confidence;
- ``allow``: ``matched`` (a valid allowlist token for this account or key), ``egress`` (the
  address is in the account's registered egress ranges), ``token`` (a token was presented);
- ``facts``: ``account_id``, ``api_key_id``, ``billing_country``, ``timezone``,
  ``accept_language``, ``user_agent``, ``org_name``, and ``has_phone``/``has_card``/``has_email``
  (personal data itself never reaches a rule);
- ``phone``: ``present``, ``valid``, ``country``, ``type`` (mobile, fixed_line,
  fixed_line_or_mobile, voip, voip_fixed, toll_free, personal, ...), ``restricted``, ``voip``,
  ``mismatch`` (its country is not the address's);
- ``card``: ``present`` (a BIN was given), ``valid``, ``country`` (issuing country, when the BIN
  table or a domestic scheme knows it), ``scheme`` (visa, mastercard, unionpay, mir, ...),
  ``restricted`` (issued in a restricted jurisdiction), ``scheme_restricted`` (Mir, Belkart,
  Shetab), ``billing_restricted``, ``mismatch`` (address, billing and issuing countries differ);
- ``email``: ``present``, ``valid``, ``country`` (of its provider or ccTLD), ``provider_restricted``,
  ``tld_restricted``, ``disposable``;
- ``client``: ``timezone_valid`` (a time zone was given and is an IANA name), ``tz_countries``,
  ``tz_restricted``, ``tz_mismatch``, ``language`` and ``lang_region`` (of the primary language),
  ``lang_restricted``, ``lang_mismatch``;
- ``hints``: which origin signals (``phone``, ``card``, ``email``, ``client``) point to a restricted
  jurisdiction, for rules that ask for corroboration (``size(hints) >= 2``);
- ``rtt``: ``checked``, ``too_far`` (the address's or a declared location is physically impossible
  given the measured round trips), ``violation_km``, ``region_countries`` (where the client can be),
  ``region_restricted`` (those of them the policy restricts), ``tunnel`` (a TCP/application RTT gap);
- ``key``: how the API key (or, without one, the account) is used across requests, from the
  behaviour signal: ``checked``, ``networks_1h``, ``networks_24h``, ``asns_1h``, ``countries_1h``,
  ``countries_24h``, ``requests_24h``, ``hosting_share_24h``, ``concurrent_km`` (farthest place seen
  within the concurrency window, lower bound), ``travel_kmh`` (fastest implied travel),
  ``active_hours_24h``, ``tokens_1h``, ``flags`` (batch-analytics flags), and ``restricted_places``
  (restricted countries among the places behind a concurrency or travel finding); the thresholds
  the signal applies are the policy's ``behaviour:`` section;
- ``unavailable``: the signals that could not answer.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cel

from geowarden.errors import ConfigError
from geowarden.model import Action, Evidence, Facts
from geowarden.policy.allowlist import EgressRanges, TokenSigner
from geowarden.policy.base import Verdict
from geowarden.policy.spec import PolicySpec, RuleSpec, read
from geowarden.signals.behaviour import BehaviourConfig
from geowarden.signals.codes import CODES

DEFAULT_POLICY = Path(__file__).with_name("default.yaml")
_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*?)(?:\n|$)")
_CEL_ERRORS = (ValueError, TypeError, RuntimeError, KeyError, ArithmeticError)
VARIABLES = frozenset(
    {"ip", "restricted", "evidence", "confidence", "allow", "facts", "phone", "card", "email", "client", "hints",
     "rtt", "key", "unavailable"}
)  # fmt: skip
_MEMO_SIZE = 4096  # distinct rule contexts whose results are kept
_UNSET = object()
_LABEL_CODES = (
    ("hosting", "IP_HOSTING"),
    ("vpn", "IP_VPN"),
    ("tor", "IP_TOR"),
    ("proxy", "IP_PROXY"),
    ("relay", "IP_RELAY"),
)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    spec: RuleSpec
    program: Any  # cel.Program
    variables: frozenset[str]  # the top-level variables it reads


@dataclass(frozen=True, slots=True)
class RuleResult:
    name: str
    fired: bool
    error: str | None = None


class PolicyEngine:
    """A loaded policy. Immutable: reloading builds a new engine, so a bad file never half-loads."""

    def __init__(
        self,
        spec: PolicySpec,
        rules: Sequence[CompiledRule],
        *,
        signer: TokenSigner | None = None,
        egress: EgressRanges | None = None,
    ) -> None:
        self.spec = spec
        self.rules = tuple(rules)
        self.signer = signer
        self.egress = egress or EgressRanges()
        self._restricted = frozenset(spec.restricted)
        self._restricted_list = sorted(spec.restricted)
        self._used = sorted(set().union(*(r.variables for r in self.rules)) & VARIABLES) if self.rules else []
        self._fields = accessed_fields([r.spec.when for r in self.rules], self._used)
        self._memo: dict[Any, tuple[RuleResult, ...]] = {}
        self._tls = threading.local()

    @classmethod
    def load(
        cls, path: Path | None = None, *, signer: TokenSigner | None = None, egress: EgressRanges | None = None
    ) -> PolicyEngine:
        """Read, validate and compile a policy file (the shipped default without a path)."""
        spec = read(path or DEFAULT_POLICY, known_codes=set(CODES))
        return cls(spec, [compile_rule(spec, r) for r in spec.rules], signer=signer, egress=egress)

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def restricted(self) -> Set[str]:
        return self._restricted

    @property
    def behaviour(self) -> BehaviourConfig:
        """The thresholds of the behaviour signal (the policy's ``behaviour:`` section)."""
        return self.spec.behaviour

    # -- evaluation --------------------------------------------------------------------------

    def context(self, evidence: Sequence[Evidence], facts: Facts | None = None) -> dict[str, Any]:
        facts = facts or Facts()
        matched = bool(
            self.signer
            and self.signer.matches(facts.allow_token, account_id=facts.account_id, api_key_id=facts.api_key_id)
        )
        return build_context(
            evidence,
            facts,
            self._restricted_list,
            matched=matched,
            egress=self.egress.matches(facts.account_id, facts.ip),
        )

    def evaluate(self, ctx: dict[str, Any]) -> tuple[RuleResult, ...]:
        """Every rule's result for one context. Rules are pure, so results are memoised per
        distinct context (only the variables the rules use count); the CEL context is built once
        per request and shared by all rules."""
        fields = self._fields
        used = {k: ({f: ctx[k][f] for f in fields[k] if f in ctx[k]} if k in fields else ctx[k]) for k in self._used}
        key = repr(used)  # the context's dicts are built in a fixed key order: repr is a faithful key
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        cel_ctx = self._cel_context(used)
        out: list[RuleResult] = []
        for rule in self.rules:
            try:
                value = rule.program.execute(cel_ctx)
            except Exception as exc:  # any failure (even ZeroDivisionError) is a rule error, never a crash
                out.append(RuleResult(rule.spec.name, False, _one_line(str(exc))))
                continue
            if not isinstance(value, bool):
                out.append(RuleResult(rule.spec.name, False, f"evaluated to {type(value).__name__}, not a boolean"))
            else:
                out.append(RuleResult(rule.spec.name, value))
        results = tuple(out)
        if len(self._memo) >= _MEMO_SIZE:
            self._memo.clear()
        self._memo[key] = results
        return results

    def _cel_context(self, used: dict[str, Any]) -> Any:
        """This thread's CEL context, with only the variables that changed since its last request
        converted again: most requests differ in ``ip`` and ``allow`` and leave the origin-signal
        variables empty, and converting Python values to CEL is most of a rule's cost."""
        state = self._tls.__dict__
        cel_ctx = state.get("ctx")
        if cel_ctx is None:
            cel_ctx = state["ctx"] = cel.Context()
            state["last"] = {}
        last: dict[str, Any] = state["last"]
        changed = {k: v for k, v in used.items() if last.get(k, _UNSET) != v}
        if changed:
            cel_ctx.update(changed)
            last.update(changed)
        return cel_ctx

    def judge(self, evidence: Sequence[Evidence], facts: Facts | None = None) -> Verdict:
        ctx = self.context(evidence, facts)
        return self.verdict(evidence, self.evaluate(ctx))

    def verdict(self, evidence: Sequence[Evidence], results: Sequence[RuleResult]) -> Verdict:
        by_code: dict[str, list[Evidence]] = {}
        for e in evidence:
            by_code.setdefault(e.code, []).append(e)
        fired = [(rule.spec, res) for rule, res in zip(self.rules, results, strict=True) if res.fired]
        candidates: list[tuple[Action, str, tuple[Evidence, ...], str | None]] = []
        survival = 1.0
        for spec, _ in fired:
            cited = tuple(e for code in spec.reasons for e in by_code.get(code, ()))
            conf = max((e.confidence for e in cited), default=1.0)
            survival *= 1.0 - spec.weight * conf
            if spec.action is not None:
                candidates.append((spec.action, spec.name, cited, spec.message))
        score = 1.0 - survival
        for threshold, action in self.spec.thresholds:
            if score >= threshold - 1e-9:
                weighted = tuple(
                    e for spec, _ in fired if spec.weight for c in spec.reasons for e in by_code.get(c, ())
                )
                candidates.append((action, f"score>={threshold:g}", weighted, None))
                break
        # Signals that could not answer: their fail mode decides (open: no effect, but counted).
        for e in by_code.get("SIGNAL_UNAVAILABLE", ()):
            mode = self.spec.fail_mode(str(e.value))
            if mode in ("closed", "review"):
                act = Action.BLOCK if mode == "closed" else Action.REVIEW
                candidates.append((act, f"fail-{mode}:{e.value}", (e,), None))
        errors = [r for r in results if r.error]
        if errors:
            mode = self.spec.fail_mode("policy")
            if mode in ("closed", "review"):
                act = Action.BLOCK if mode == "closed" else Action.REVIEW
                candidates.append((act, "fail-" + mode + ":rule-error", (), None))
        if not candidates:
            return Verdict(
                Action.ALLOW, round(score, 6), (), tuple(s.name for s, _ in fired), self.spec.messages[Action.ALLOW]
            )
        action = Action.strictest([c[0] for c in candidates])
        reasons: list[Evidence] = []
        message: str | None = None
        for act, _, cited, msg in candidates:
            if act == action:
                reasons.extend(e for e in cited if e not in reasons)
                message = message or msg
        if action == Action.BLOCK:
            score = max(score, self.spec.thresholds[0][0] if self.spec.thresholds else 0.9)
        rules = tuple([s.name for s, _ in fired] + [name for _, name, _, _ in candidates if ":" in name])
        return Verdict(action, round(min(1.0, score), 6), tuple(reasons), rules, message or self.spec.messages[action])

    def explain(self, evidence: Sequence[Evidence], facts: Facts | None = None) -> dict[str, Any]:
        """Every step of one decision: the context, each rule's result, the score, the action."""
        ctx = self.context(evidence, facts)
        results = self.evaluate(ctx)
        verdict = self.verdict(evidence, results)
        return {
            "policy": self.version,
            "evidence": [e.to_dict() for e in evidence],
            "context": ctx,
            "rules": [
                {
                    "name": rule.spec.name,
                    "line": rule.spec.line,
                    "when": rule.spec.when,
                    "fired": res.fired,
                    "error": res.error,
                    "action": rule.spec.action.value if rule.spec.action else None,
                    "weight": rule.spec.weight,
                }
                for rule, res in zip(self.rules, results, strict=True)
            ],
            "thresholds": [[t, a.value] for t, a in self.spec.thresholds],
            "action": verdict.action.value,
            "score": verdict.score,
            "reasons": [e.code for e in verdict.reasons],
            "fired": list(verdict.rules),
            "user_message": verdict.user_message,
        }


def accessed_fields(sources: Sequence[str], variables: Sequence[str]) -> dict[str, frozenset[str]]:
    """For each map variable the rules only ever read field by field (``key.flags``, never
    ``key`` alone), the fields they read. Only those fields go into the CEL context and the memo
    key, so a variable with many changing fields (``key``'s counters) neither costs a conversion
    nor defeats the memo when the rules look at one stable field of it."""
    out: dict[str, frozenset[str]] = {}
    for var in variables:
        fields: set[str] = set()
        bare = False
        name = re.escape(var)
        for src in sources:
            fields.update(re.findall(r"(?<![\w.])" + name + r"\s*\.\s*([A-Za-z_]\w*)", src))
            bare = bare or re.search(r"(?<![\w.])" + name + r"(?!\s*\.)(?!\w)", src) is not None
        if fields and not bare:
            out[var] = frozenset(fields)
    return out


def compile_rule(spec: PolicySpec, rule: RuleSpec) -> CompiledRule:
    """Compile one rule's CEL and try it on an empty request, naming the file, line and column of
    any error: an unknown variable or field, or a type error, fails at load, not per request."""
    try:
        # The jurisdiction list is a constant of the policy: inline it rather than convert it for
        # every request (the per-request CEL conversion is most of a rule's cost).
        program = cel.compile(inline_constant(rule.when, "restricted", sorted(spec.restricted)))
    except _CEL_ERRORS as exc:
        raise ConfigError(_place(spec, rule, str(exc))) from None
    try:
        value = program.execute(_PROBE)
    except KeyError as exc:
        raise ConfigError(_place(spec, rule, f"unknown field {exc.args[0]!r}")) from None
    except _CEL_ERRORS as exc:
        raise ConfigError(_place(spec, rule, str(exc))) from None
    if not isinstance(value, bool):
        raise ConfigError(_place(spec, rule, f"must be a condition, but gives {type(value).__name__}"))
    return CompiledRule(rule, program, frozenset(program.variables()))


_STRING = re.compile(r"""(?:[rRbB]{0,2})("\"\"|'''|"|')""")


def inline_constant(source: str, name: str, values: list[str]) -> str:
    """``source`` with the identifier ``name`` replaced by a CEL list literal of ``values``,
    outside string literals and not as a field (``x.name``) or a longer identifier."""
    literal = "[" + ", ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "]"
    ident = re.compile(r"(?<![\w.])" + re.escape(name) + r"(?!\w)")
    out: list[str] = []
    i = 0
    while i < len(source):
        m = _STRING.search(source, i)
        if m is None:
            out.append(ident.sub(lambda _m: literal, source[i:]))
            break
        out.append(ident.sub(lambda _m: literal, source[i : m.start()]))
        quote = m.group(1)
        j = m.end()
        while j < len(source):
            if source[j] == "\\":
                j += 2
                continue
            if source.startswith(quote, j):
                j += len(quote)
                break
            j += 1
        out.append(source[m.start() : j])
        i = j
    return "".join(out)


def _place(spec: PolicySpec, rule: RuleSpec, message: str) -> str:
    line = rule.line
    m = _POSITION.search(message)
    if m and line is not None:
        # A one-line `when:` value starts on the rule's line; CEL reports the column within it.
        reason = m.group(3).strip()
        return f"{spec.path}:{line + int(m.group(1)) - 1}: rule {rule.name!r}: bad CEL at column {m.group(2)}: {reason}"
    return f"{spec.path}:{line or '?'}: rule {rule.name!r}: bad CEL: {_one_line(message)}"


def _one_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "error"
    return first[:300]


def build_context(
    evidence: Sequence[Evidence], facts: Facts, restricted: list[str], *, matched: bool, egress: bool
) -> dict[str, Any]:
    """The variables a rule sees (see the module docstring)."""
    codes = [e.code for e in evidence]
    found = set(codes)
    country = ""
    countries: list[str] = []
    for e in evidence:
        if e.code == "IP_COUNTRY" and isinstance(e.value, str):
            country = e.value
        elif e.code == "IP_COUNTRY_DISAGREEMENT" and isinstance(e.value, dict):
            countries = sorted(set(e.value.get("answers", {}).values()))
    if country and not countries:
        countries = [country]
    unavailable = sorted({str(e.value) for e in evidence if e.code == "SIGNAL_UNAVAILABLE"})
    ip: dict[str, Any] = {
        "present": facts.ip is not None,
        "valid": facts.ip is not None and "IP_INVALID" not in found,
        "known": facts.ip is not None and not found & {"IP_UNKNOWN", "IP_INVALID", "IP_PRIVATE_OR_RESERVED"},
        "reserved": "IP_PRIVATE_OR_RESERVED" in found,
        "country": country,
        "countries": countries,
        "disagreement": "IP_COUNTRY_DISAGREEMENT" in found,
    }
    for name, code in _LABEL_CODES:
        ip[name] = code in found
    first: dict[str, Any] = {}
    for e in evidence:
        if e.code in _VALUE_CODES and e.code not in first:
            first[e.code] = e.value
    phone_type = first.get("PHONE_TYPE")
    issuer = first.get("CARD_ISSUER")
    issuer = issuer if isinstance(issuer, dict) else {}
    lang = first.get("LANG_PRIMARY")
    lang = lang if isinstance(lang, dict) else {}
    tz_countries = first.get("TZ_COUNTRY")
    return {
        "ip": ip,
        "restricted": restricted,
        "evidence": codes,
        "confidence": {e.code: float(e.confidence) for e in evidence},
        "allow": {"matched": matched, "egress": egress, "token": bool(facts.allow_token)},
        "facts": {
            "account_id": facts.account_id or "",
            "api_key_id": facts.api_key_id or "",
            "billing_country": facts.billing_country or "",
            "timezone": facts.timezone or "",
            "accept_language": facts.accept_language or "",
            "user_agent": facts.user_agent or "",
            "org_name": facts.org_name or "",
            "has_phone": facts.phone is not None,
            "has_card": facts.card_bin is not None,
            "has_email": facts.email is not None,
        },
        "phone": {
            "present": facts.phone is not None,
            "valid": "PHONE_TYPE" in found,
            "country": _text(first.get("PHONE_COUNTRY")),
            "type": _text(phone_type.get("type")) if isinstance(phone_type, dict) else "",
            "restricted": "PHONE_COUNTRY_RESTRICTED" in found,
            "voip": "PHONE_VOIP" in found,
            "mismatch": "PHONE_COUNTRY_MISMATCH" in found,
        },
        "card": {
            "present": facts.card_bin is not None,
            "valid": "CARD_ISSUER" in found,
            "country": _text(issuer.get("country")),
            "scheme": _text(issuer.get("scheme")),
            "restricted": "CARD_ISSUER_RESTRICTED" in found,
            "scheme_restricted": "CARD_SCHEME_RESTRICTED" in found,
            "billing_restricted": "CARD_BILLING_RESTRICTED" in found,
            "mismatch": "CARD_COUNTRY_MISMATCH" in found,
        },
        "email": {
            "present": facts.email is not None,
            "valid": facts.email is not None and "EMAIL_INVALID" not in found and "email" not in unavailable,
            "country": _text(first.get("EMAIL_COUNTRY")),
            "provider_restricted": "EMAIL_PROVIDER_RESTRICTED" in found,
            "tld_restricted": "EMAIL_TLD_RESTRICTED" in found,
            "disposable": "EMAIL_DISPOSABLE" in found,
        },
        "client": {
            "timezone_valid": facts.timezone is not None and "TZ_INVALID" not in found,
            "tz_countries": [str(c) for c in tz_countries] if isinstance(tz_countries, list) else [],
            "tz_restricted": "TZ_RESTRICTED" in found,
            "tz_mismatch": "TZ_COUNTRY_MISMATCH" in found,
            "language": _text(lang.get("language")),
            "lang_region": _text(lang.get("region")),
            "lang_restricted": "LANG_RESTRICTED_REGION" in found,
            "lang_mismatch": "LANG_COUNTRY_MISMATCH" in found,
        },
        "hints": [name for name, codes in _HINT_CODES if not found.isdisjoint(codes)],
        "rtt": _rtt_context(evidence, found),
        "key": _key_context(evidence),
        "unavailable": unavailable,
    }


def _rtt_context(evidence: Sequence[Evidence], found: set[str]) -> dict[str, Any]:
    """What the latency signal found: whether the address's location is physically possible, and
    where the client can be (``region_countries``; ``region_restricted``: those the policy restricts)."""
    region: dict[str, Any] = next(
        (e.value for e in evidence if e.code == "RTT_REGION" and isinstance(e.value, dict)), {}
    )
    violation = max(
        (float(e.value.get("violation_km", 0.0)) for e in evidence if e.code == "RTT_TOO_FAR_FROM_CLAIMED"
         and isinstance(e.value, dict)),
        default=0.0,
    )  # fmt: skip
    return {
        "checked": "RTT_REGION" in found,
        "too_far": "RTT_TOO_FAR_FROM_CLAIMED" in found,
        "violation_km": violation,
        "region_countries": [str(c) for c in region.get("countries", [])],
        "region_restricted": [str(c) for c in region.get("restricted", [])],
        "tunnel": "RTT_TUNNEL_GAP" in found,
    }


_KEY_FIELDS = (
    ("networks_1h", 0), ("networks_24h", 0), ("asns_1h", 0), ("countries_1h", 0), ("countries_24h", 0),
    ("requests_24h", 0), ("hosting_share_24h", 0.0), ("concurrent_km", 0.0), ("travel_kmh", 0.0),
    ("active_hours_24h", 0), ("tokens_1h", 0.0),
)  # fmt: skip


def _key_context(evidence: Sequence[Evidence]) -> dict[str, Any]:
    """What the behaviour signal found about the key (every field present; zero when unknown)."""
    activity: dict[str, Any] = {}
    places: set[str] = set()
    for e in evidence:
        if not isinstance(e.value, dict):
            continue
        if e.code == "KEY_ACTIVITY":
            activity = e.value
        elif e.code in ("KEY_CONCURRENT_DISTANT", "KEY_IMPOSSIBLE_TRAVEL"):
            places.update(str(c) for c in e.value.get("restricted", []))
    out: dict[str, Any] = {"checked": bool(activity)}
    for name, zero in _KEY_FIELDS:
        value = activity.get(name, zero)
        out[name] = type(zero)(value) if isinstance(value, int | float) else zero
    out["flags"] = [str(f) for f in activity.get("flags", [])]
    out["restricted_places"] = sorted(places)
    return out


#: Evidence whose value the context reads (the first of each code counts).
_VALUE_CODES = frozenset({"PHONE_COUNTRY", "PHONE_TYPE", "CARD_ISSUER", "EMAIL_COUNTRY", "TZ_COUNTRY", "LANG_PRIMARY"})
#: Origin signals and the codes by which each points to a restricted jurisdiction (``hints``).
_HINT_CODES = (
    ("phone", frozenset({"PHONE_COUNTRY_RESTRICTED"})),
    ("card", frozenset({"CARD_ISSUER_RESTRICTED", "CARD_SCHEME_RESTRICTED", "CARD_BILLING_RESTRICTED"})),
    ("email", frozenset({"EMAIL_PROVIDER_RESTRICTED", "EMAIL_TLD_RESTRICTED"})),
    ("client", frozenset({"TZ_RESTRICTED", "LANG_RESTRICTED_REGION"})),
)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


#: What a rule sees for a request with no facts at all: every key present, every value empty.
_PROBE = build_context([], Facts(), ["CN"], matched=False, egress=False)


def reference(engine: PolicyEngine) -> str:
    """A markdown reference of a policy: jurisdictions, thresholds, fail modes and every rule."""
    spec = engine.spec
    lines = [f"# Policy `{spec.name}`", "", f"Version `{spec.version}`. Generated by `geowarden policy doc`.", ""]
    if spec.description:
        lines += [" ".join(spec.description.split()), ""]
    lines += ["## Restricted jurisdictions", "", "| code | name | basis | reason |", "|---|---|---|---|"]
    lines += [f"| {j.code} | {j.name} | {j.basis} | {j.reason} |" for j in spec.restricted.values()]
    lines += [
        "",
        "## Rules",
        "",
        "| rule | when (CEL) | action | weight | reasons | description |",
        "|---|---|---|---|---|---|",
    ]
    for r in spec.rules:
        when = r.when.replace("|", "\\|")
        act = r.action.value if r.action else "—"
        lines.append(f"| `{r.name}` | `{when}` | {act} | {r.weight:g} | {', '.join(r.reasons)} | {r.description} |")
    lines += [
        "",
        "## Thresholds",
        "",
        "The score is the noisy-OR of the fired rules' weights, each scaled by the",
        "confidence of the evidence it cites; the strictest of the rules' actions and the threshold reached wins.",
        "",
    ]
    lines += [f"- {a.value} from {t:g}" for t, a in spec.thresholds]
    lines += ["", "## Fail modes", ""]
    lines += [f"- `{sig}`: {mode}" for sig, mode in spec.fail_modes.items()]
    return "\n".join(lines) + "\n"
