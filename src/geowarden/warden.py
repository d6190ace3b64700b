"""The Warden: the one object the CLI, the service and the middleware drive.

::

    warden = Warden.open()                 # current snapshot (or the default) + the policy file
    warden.lookup("1.2.4.8")               # IPRecord
    warden.lookup_many(addresses)          # Lookups (columnar)
    warden.decide(Facts(ip="1.2.4.8"))     # Decision

Signals (``geowarden.signals.registry``) run one after another, each seeing what the ones
before it found; a signal that raises does not stop the decision: it becomes
``SIGNAL_UNAVAILABLE`` evidence and the policy's fail mode for that signal decides what follows.
A shadow policy, when set, judges the same evidence beside the active one and every difference
is counted and kept (``warden.shadow``); only the active policy's decision is returned.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy.typing as npt

from geowarden.errors import ConfigError
from geowarden.intel.snapshot import IPRecord, Lookups, Snapshot
from geowarden.intel.store import SnapshotStore
from geowarden.model import Decision, Evidence, Facts
from geowarden.policy.allowlist import EgressRanges, Revocations, TokenSigner
from geowarden.policy.base import Policy, Verdict
from geowarden.policy.engine import PolicyEngine
from geowarden.settings import Settings
from geowarden.signals import registry
from geowarden.signals.base import Signal, SignalContext
from geowarden.signals.phone import CachedLineTypes, TwilioLookup
from geowarden.signals.rtt import NAME as RTT_SIGNAL
from geowarden.signals.thresholds import DEFAULT_BEHAVIOUR, BehaviourConfig
from geowarden.state import StateStore, open_store

log = logging.getLogger("geowarden")
_ids = random.Random(int.from_bytes(os.urandom(16), "big"))  # noqa: S311 - ids must be unique, not secret


def _new_id() -> str:
    """A random 128-bit decision id (a syscall per id cost more than the rest of a decision)."""
    return f"{_ids.getrandbits(128):032x}"


@dataclass(slots=True)
class ShadowStats:
    """Where a candidate policy running in shadow would have decided differently."""

    version: str
    decisions: int = 0
    changed: int = 0
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)
    max_examples: int = 20

    def record(self, facts: Facts, active: Verdict, shadow: Verdict) -> None:
        self.decisions += 1
        if active.action == shadow.action:
            return
        self.changed += 1
        self.transitions[(active.action.value, shadow.action.value)] += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(
                {
                    "facts": facts.to_dict(),
                    "active": active.action.value,
                    "shadow": shadow.action.value,
                    "shadow_rules": list(shadow.rules),
                }
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "decisions": self.decisions,
            "changed": self.changed,
            "transitions": [{"from": a, "to": b, "n": n} for (a, b), n in self.transitions.most_common()],
            "examples": self.examples,
        }


class Warden:
    def __init__(
        self,
        intel: Snapshot,
        policy: Policy | None = None,
        *,
        signals: Sequence[Signal] = registry.SIGNALS,
        shadow: Policy | None = None,
        state: StateStore | None = None,
    ) -> None:
        self.intel = intel
        self.state: StateStore = state if state is not None else open_store(None)
        self.policy: Policy = policy or PolicyEngine.load()
        self.signals = tuple(signals)
        self.shadow_policy = shadow
        self.shadow = ShadowStats(shadow.version) if shadow is not None else None
        self.unavailable: Counter[str] = Counter()  # signal -> times it could not answer
        #: Revoked allowlist tokens (the service sets the audit log's list); checked on every
        #: request that presents a genuine token.
        self.revocations: Revocations | None = None
        self._ctx = self._context()

    def _context(self) -> SignalContext:
        config = getattr(self.policy, "behaviour", None)
        return SignalContext(
            self.intel,
            frozenset(self.policy.restricted),
            state=self.state,
            behaviour=config if isinstance(config, BehaviourConfig) else DEFAULT_BEHAVIOUR,
        )

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        snapshot: Path | None = None,
        policy: Policy | Path | None = None,
        shadow: Policy | Path | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> Warden:
        """Open the current snapshot under ``GEOWARDEN_HOME`` (building the default one the first
        time), or the snapshot directory given; the policy file given, ``GEOWARDEN_POLICY``, or the
        shipped default policy."""
        settings = settings or Settings.from_env()
        signals = configured_signals(settings)
        path = snapshot or settings.snapshot
        if path is not None:
            intel = Snapshot.open(path)
        else:
            from geowarden.intel.sources.pypi import default_sources  # noqa: PLC0415 - only on first run

            store = SnapshotStore(settings.intel_dir)
            intel = store.open_current(default_sources=default_sources, progress=progress)
        return cls(
            intel,
            load_policy(settings, policy),
            signals=signals,
            shadow=load_policy(settings, shadow) if shadow else None,
            state=open_store(settings.state_url),
        )

    def reload_policy(self, path: Path | None, settings: Settings) -> str:
        """Load a policy file and switch to it; if it does not load, the current policy stays
        active and the ``ConfigError`` (file, line, reason) is raised. Returns the new version."""
        new = load_policy(settings, path)  # raises before anything changes
        self.policy = new
        self._ctx = self._context()
        log.info("policy %s is active", new.version)
        return new.version

    def lookup(self, ip: str) -> IPRecord:
        return self.intel.lookup(ip)

    def lookup_many(self, ips: Sequence[str] | npt.NDArray[Any]) -> Lookups:
        return self.intel.lookup_many(ips)

    def evidence(self, facts: Facts) -> list[Evidence]:
        """Everything the signals find, before the policy weighs it."""
        out: list[Evidence] = []
        # One context per request, over the list being filled: each signal sees what the ones
        # before it found (read-only: ``found`` is a Sequence).
        base = self._ctx
        ctx = SignalContext(base.intel, base.restricted, out, base.state, base.behaviour)
        for signal in self.signals:
            try:
                out.extend(signal.evaluate(facts, ctx))
            except Exception as exc:  # a failing signal must not take the decision down with it
                name = signal.name
                self.unavailable[name] += 1
                log.warning("signal %s could not answer: %s", name, type(exc).__name__)
                out.append(
                    Evidence(
                        signal=name,
                        code="SIGNAL_UNAVAILABLE",
                        value=name,
                        detail=f"the {name} signal could not answer ({type(exc).__name__})",
                    )
                )
        return out

    def allowlist(self, facts: Facts) -> tuple[Facts, Evidence | None]:
        """The facts the policy should see and the evidence of the allowlist token presented:
        ``ALLOWLISTED`` (its id) for a genuine token of this account or key, ``ALLOWLIST_REVOKED``
        for one that was revoked (then the policy does not see it at all)."""
        signer = getattr(self.policy, "signer", None)
        if not facts.allow_token or not isinstance(signer, TokenSigner):
            return facts, None
        grant = signer.grant_for(facts.allow_token, account_id=facts.account_id, api_key_id=facts.api_key_id)
        if grant is None:
            return facts, None
        if self.revocations is not None and self.revocations.is_revoked(grant.token_id):
            detail = f"allowlist token {grant.token_id} was revoked"
            ev = Evidence(signal="allowlist", code="ALLOWLIST_REVOKED", value=grant.token_id, detail=detail)
            return replace(facts, allow_token=None), ev
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(grant.expires))
        extra = f"; may clear {', '.join(sorted(grant.clears))}" if grant.clears else ""
        detail = f"allowlist token {grant.token_id} for {grant.subject} until {until}{extra}"
        return facts, Evidence(signal="allowlist", code="ALLOWLISTED", value=grant.token_id, detail=detail)

    def decide(self, facts: Facts) -> Decision:
        t0 = time.perf_counter()
        allow_ev = None
        if facts.allow_token:
            facts, allow_ev = self.allowlist(facts)
        evidence = self.evidence(facts)
        egress = getattr(self.policy, "egress", None) if facts.account_id else None
        if isinstance(egress, EgressRanges) and len(egress):
            note_egress(evidence, facts, egress)
        if allow_ev is not None:
            evidence.append(allow_ev)
        verdict = self.policy.judge(evidence, facts)
        if allow_ev is not None and allow_ev not in verdict.reasons and verdict.action.value in ("allow", "limited"):
            verdict = replace(verdict, reasons=(*verdict.reasons, allow_ev))
        elapsed = (time.perf_counter() - t0) * 1e6
        if self.shadow_policy is not None and self.shadow is not None:
            self.shadow.record(facts, verdict, self.shadow_policy.judge(evidence, facts))
        return Decision(
            action=verdict.action,
            score=verdict.score,
            reasons=verdict.reasons,
            rules=verdict.rules,
            user_message=verdict.user_message,
            evidence=tuple(evidence),
            policy_version=self.policy.version,
            decision_id=_new_id(),
            elapsed_us=elapsed,
        )


def note_egress(evidence: list[Evidence], facts: Facts, egress: EgressRanges) -> None:
    """Where a peer's shared indicator covers the account's registered egress, say so in its
    evidence (``local``): local policy trusts the registration over the peer, never silently."""
    for i, e in enumerate(evidence):
        if e.code == "IP_SHARED_INDICATOR" and egress.matches(facts.account_id, facts.ip):
            value = dict(e.value) if isinstance(e.value, dict) else {}
            value["local"] = [*value.get("local", []), "the account's registered egress"]
            evidence[i] = replace(
                e, value=value, detail=f"{e.detail}; local policy disagrees: the account's registered egress"
            )


def configured_signals(settings: Settings) -> tuple[Signal, ...]:
    """The registry's signals as the settings configure them: the operator's data sources plugged
    in (a BIN table, the sanctions lists, Twilio Lookup for phone line types, cached, the latency
    calibration), the signals named in ``GEOWARDEN_SIGNALS_OFF`` left out. A calibration file that
    cannot be used is a ``ConfigError``: the rtt signal never falls back to the physical bound
    silently when the operator configured one."""
    lookup = None
    if settings.twilio is not None:
        sid, token = settings.twilio
        lookup = CachedLineTypes(TwilioLookup(sid, token.reveal()))
    calibration = None
    where = settings.latency_calibration_file
    if where is not None and RTT_SIGNAL not in settings.signals_off:
        from geowarden.latency.calibration import load  # noqa: PLC0415 - only when one is configured

        try:
            calibration = load(where)
        except ConfigError as exc:
            if settings.latency_calibration is None:
                raise
            raise ConfigError(f"GEOWARDEN_LATENCY_CALIBRATION: {exc.message}", file=str(where)) from None
        log.info(
            "latency calibration %s: %d landmarks, %d inconsistent, %s",
            where, len(calibration.landmarks), len(calibration.inconsistent),
            "with the expected-RTT ceiling" if calibration.ceiling is not None else "no ceiling",
        )  # fmt: skip
    return registry.configure(
        off=settings.signals_off,
        bin_table=settings.bin_table,
        screening_data=settings.screening_lists,
        phone_lookup=lookup,
        shared_dir=settings.home / "shared-indicators",
        rtt_calibration=calibration,
    )


def load_policy(settings: Settings, policy: Policy | Path | None) -> PolicyEngine | Policy:
    """A policy object as given, or the engine for a file (given, ``settings.policy``, default)."""
    if policy is not None and not isinstance(policy, (str, Path)):
        return policy
    path = Path(policy) if policy is not None else settings.policy
    signer = TokenSigner.from_settings(settings)
    return PolicyEngine.load(path, signer=signer, egress=load_egress(settings.home))


def load_egress(home: Path) -> EgressRanges:
    """Registered egress ranges from ``$GEOWARDEN_HOME/egress.yaml`` (``account: [cidr, ...]``)."""
    from geowarden.errors import ConfigError  # noqa: PLC0415
    from geowarden.policy.yamlsrc import load  # noqa: PLC0415

    path = home / "egress.yaml"
    if not path.is_file():
        return EgressRanges()
    raw, _where = load(path)
    if raw is None:
        return EgressRanges()
    if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
        raise ConfigError(f"{path}: egress ranges map account ids to lists of networks")
    return EgressRanges({str(k): [str(x) for x in v] for k, v in raw.items()})
