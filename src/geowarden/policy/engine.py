"""The policy engine: CEL rules over the evidence, weighed into an action, a score and reasons.

Rules are compiled once at load (``cel``, the Python bindings of the Rust CEL implementation:
see docs/cel-engines.md for why); a request costs one context build and one evaluation per rule.
What a rule sees (all keys always present; unknown is ``""``, ``0`` or ``false``):

- ``ip``: ``present``, ``valid``, ``known``, ``reserved``, ``country``, ``countries`` (every
  source's answer), ``disagreement``, ``hosting``, ``vpn``, ``tor``, ``proxy``, ``relay``;
- ``restricted``: the jurisdiction codes of the policy (``ip.country in restricted``);
- ``evidence``: the codes found; ``confidence``: code -> confidence;
- ``allow``: ``matched`` (a valid, unrevoked allowlist token for this account or key), ``egress``
  (the address is in the account's registered egress ranges), ``token`` (a token was presented),
  ``clears`` (what the reviewer let the token clear beyond the default: ``restricted``, ``tor``,
  ``sanctions``; empty without a token);
- ``facts``: ``account_id``, ``api_key_id``, ``billing_country``, ``timezone``,
  ``accept_language``, ``user_agent``, ``org_name``, and ``has_phone``/``has_card``/``has_email``
  (personal data itself never reaches a rule);
- one variable per signal that exports one (``geowarden.signals.registry``; each signal class
  documents its fields): ``ip`` (above, the network signal's), ``phone``, ``card``, ``email``,
  ``client``, ``rtt`` and ``key``; every field always present, empty when the signal found nothing
  or is switched off;
- ``hints``: which signals point to a restricted jurisdiction (each signal's ``hint_codes``:
  ``phone``, ``card``, ``email``, ``client``), for rules that ask for corroboration
  (``size(hints) >= 2``);
- ``unavailable``: the signals that could not answer.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cel

from geowarden.errors import ConfigError
from geowarden.model import Action, Evidence, Facts
from geowarden.policy.allowlist import EgressRanges, TokenSigner
from geowarden.policy.base import Verdict
from geowarden.policy.spec import PolicySpec, RuleSpec, read
from geowarden.signals import codes
from geowarden.signals.base import NOTHING, Found, Signal
from geowarden.signals.registry import SIGNALS
from geowarden.signals.thresholds import BehaviourConfig

DEFAULT_POLICY = Path(__file__).with_name("default.yaml")
_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*?)(?:\n|$)")
_CEL_ERRORS = (ValueError, TypeError, RuntimeError, KeyError, ArithmeticError)
#: The variables the engine itself provides; the signals add one each (``Signal.variable``).
CORE_VARIABLES = frozenset({"restricted", "evidence", "confidence", "allow", "facts", "hints", "unavailable"})
_MEMO_SIZE = 4096  # distinct rule contexts whose results are kept
_UNSET = object()


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
        signals: Sequence[Signal] = SIGNALS,
    ) -> None:
        self.spec = spec
        self.rules = tuple(rules)
        self.signer = signer
        self.egress = egress or EgressRanges()
        self.signals = tuple(signals)
        self.context_of = ContextBuilder(self.signals, sorted(spec.restricted))
        self._restricted = frozenset(spec.restricted)
        used = set().union(*(r.variables for r in self.rules)) if self.rules else set()
        self._used = sorted(used & self.context_of.variables)
        self._fields = accessed_fields([r.spec.when for r in self.rules], self._used)
        self._memo: dict[Any, tuple[RuleResult, ...]] = {}
        self._tls = threading.local()

    @classmethod
    def load(
        cls,
        path: Path | None = None,
        *,
        signer: TokenSigner | None = None,
        egress: EgressRanges | None = None,
        signals: Sequence[Signal] = SIGNALS,
    ) -> PolicyEngine:
        """Read, validate and compile a policy file (the shipped default without a path) against
        the signals' codes and variables."""
        spec = read(path or DEFAULT_POLICY, known_codes=set(codes.table(signals)))
        probe = ContextBuilder(signals, sorted(spec.restricted)).probe()
        compiled = [compile_rule(spec, r, probe) for r in spec.rules]
        return cls(spec, compiled, signer=signer, egress=egress, signals=signals)

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

    def context(
        self, evidence: Sequence[Evidence], facts: Facts | None = None, only: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """The variables a rule sees for one request (``only``: just these, for speed)."""
        facts = facts or Facts()
        grant = (
            self.signer.grant_for(facts.allow_token, account_id=facts.account_id, api_key_id=facts.api_key_id)
            if self.signer is not None and facts.allow_token
            else None
        )
        egress = self.egress.matches(facts.account_id, facts.ip)
        clears = tuple(sorted(grant.clears)) if grant is not None else ()
        return self.context_of(evidence, facts, matched=grant is not None, egress=egress, only=only, clears=clears)

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
        ctx = self.context(evidence, facts, only=self._used)
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
        if not candidates:  # allowed, but every rule that fired still names the evidence it rests on
            cited_all: list[Evidence] = []
            for spec, _ in fired:
                cited_all.extend(e for c in spec.reasons for e in by_code.get(c, ()) if e not in cited_all)
            names = tuple(s.name for s, _ in fired)
            return Verdict(Action.ALLOW, round(score, 6), tuple(cited_all), names, self.spec.messages[Action.ALLOW])
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


def compile_rule(spec: PolicySpec, rule: RuleSpec, probe: dict[str, Any]) -> CompiledRule:
    """Compile one rule's CEL and try it on an empty request (``probe``: every variable present,
    every field empty), naming the file, line and column of any error: an unknown variable or
    field, or a type error, fails at load, not per request."""
    try:
        # The jurisdiction list is a constant of the policy: inline it rather than convert it for
        # every request (the per-request CEL conversion is most of a rule's cost).
        program = cel.compile(inline_constant(rule.when, "restricted", sorted(spec.restricted)))
    except _CEL_ERRORS as exc:
        raise ConfigError(_place(spec, rule, str(exc))) from None
    try:
        value = program.execute(probe)
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


#: One variable's value for one request: (what the signals found, the facts, allowlist matched, egress).
Getter = Callable[[Found, Facts, bool, bool], Any]


class ContextBuilder:
    """Assembles the variables a rule sees: the engine's own (``CORE_VARIABLES``) and each
    signal's export. Built once per policy, with a plan (one getter per variable) for every set of
    variables asked for; a request costs one pass to index the evidence and one call per variable
    the rules read."""

    def __init__(self, signals: Sequence[Signal], restricted: list[str]) -> None:
        self.restricted = restricted
        self.exports = {s.variable: s for s in signals if s.variable}
        clash = sorted(set(self.exports) & CORE_VARIABLES)
        if clash or len(self.exports) != sum(1 for s in signals if s.variable):
            raise ConfigError(f"signals export clashing CEL variables: {', '.join(clash) or 'a name twice'}")
        self.hints = tuple((s.name, s.hint_codes) for s in signals if s.hint_codes)
        self.variables = CORE_VARIABLES | frozenset(self.exports)
        self._getters: dict[str, Getter] = {
            "restricted": lambda _found, _facts, _m, _e: self.restricted,
            "evidence": lambda found, _facts, _m, _e: [e.code for e in found.evidence],
            "confidence": lambda found, _facts, _m, _e: {e.code: float(e.confidence) for e in found.evidence},
            "allow": lambda _found, facts, m, e: {
                "matched": m,
                "egress": e,
                "token": bool(facts.allow_token),
                "clears": [],
            },
            "facts": lambda _found, facts, _m, _e: _facts(facts),
            "hints": lambda found, _facts, _m, _e: [s for s, codes in self.hints if not found.codes.isdisjoint(codes)],
            "unavailable": lambda found, _facts, _m, _e: sorted(
                {str(e.value) for e in found.evidence if e.code == "SIGNAL_UNAVAILABLE"}
            ),
        }
        for name, signal in self.exports.items():
            self._getters[name] = _exporter(signal)
        self._plans: dict[tuple[str, ...], tuple[tuple[str, Getter], ...]] = {}
        self._all = self.plan(sorted(self.variables))

    def plan(self, names: Sequence[str]) -> tuple[tuple[str, Getter], ...]:
        """The getters of ``names`` (in that order), built once per distinct list."""
        key = tuple(names)
        got = self._plans.get(key)
        if got is None:
            got = self._plans[key] = tuple((name, self._getters[name]) for name in key)
        return got

    def __call__(
        self,
        evidence: Sequence[Evidence],
        facts: Facts,
        *,
        matched: bool,
        egress: bool,
        only: Sequence[str] | None = None,
        clears: Sequence[str] = (),
    ) -> dict[str, Any]:
        found = Found.of(evidence) if evidence else NOTHING
        plan = self._all if only is None else self.plan(only)
        out = {name: get(found, facts, matched, egress) for name, get in plan}
        if clears and "allow" in out:
            out["allow"]["clears"] = list(clears)
        return out

    def probe(self) -> dict[str, Any]:
        """The context of a request with no facts at all: every key present, every value empty."""
        return self([], Facts(), matched=False, egress=False)


def _exporter(signal: Signal) -> Getter:
    export = signal.export
    return lambda found, facts, _m, _e: export(found, facts)


def _facts(facts: Facts) -> dict[str, Any]:
    """The facts a rule may read (personal data itself never reaches a rule: only whether given)."""
    return {
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
    }


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
