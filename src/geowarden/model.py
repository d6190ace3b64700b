"""The core types every part of geowarden speaks: Facts in, Evidence found, a Decision out.

They are frozen, slotted dataclasses: cheap to build on the decision path, hashable where it
helps, and turned into plain JSON-ready dicts by ``to_dict`` at the edges (CLI, service, audit).
Unknown is not false: every field of ``Facts`` is optional, and a signal that cannot answer says
so with evidence of its own rather than staying silent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Action(enum.StrEnum):
    """What a decision lets the request do, from most to least permissive.

    The order is the precedence: when several rules fire, the most restrictive wins.
    """

    ALLOW = "allow"
    LIMITED = "limited"  # allowed with restrictions (smaller models, lower rate)
    CHALLENGE = "challenge"  # step-up verification first (phone, card, identity)
    REVIEW = "review"  # held for a human reviewer
    BLOCK = "block"

    @property
    def rank(self) -> int:
        return _ACTION_RANK[self]

    @classmethod
    def strictest(cls, actions: list[Action]) -> Action:
        return max(actions, key=_ACTION_RANK.__getitem__, default=cls.ALLOW)


_ACTION_RANK = {a: i for i, a in enumerate(Action)}


@dataclass(frozen=True, slots=True, kw_only=True)
class RTTSample:
    """One measured round-trip time from a landmark at (lat, lon) to the client."""

    lat: float
    lon: float
    ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What is known about one request or signup. Every field is optional."""

    ip: str | None = None
    timestamp: float | None = None  # epoch seconds
    account_id: str | None = None
    api_key_id: str | None = None
    accept_language: str | None = None
    timezone: str | None = None  # IANA zone reported by the client
    user_agent: str | None = None
    phone: str | None = field(default=None, repr=False)  # personal: never in a repr
    card_bin: str | None = field(default=None, repr=False)  # personal: never in a repr
    billing_country: str | None = None
    email: str | None = field(default=None, repr=False)  # personal: never in a repr
    org_name: str | None = None
    org_owners: tuple[str, ...] = ()
    rtt: tuple[RTTSample, ...] = ()
    allow_token: str | None = field(default=None, repr=False)  # a secret presented with the request
    input_tokens: float | None = None  # prompt size in tokens (the account's volume, behaviour signal)
    rtt_tcp_ms: tuple[float, ...] = ()  # recent TCP handshake RTTs of this client at the edge (tunnel gap)
    rtt_app_ms: tuple[float, ...] = ()  # the same client's application-level RTTs (tunnel gap)
    claimed: str | tuple[float, float] | None = None  # a declared location: "CC" or (lat, lon)
    # The account's payment instrument as the processor identifies it (an opaque fingerprint, one per
    # card, never the number): accounts that share it are linked (group signal). Personal: never in a repr.
    payment_fingerprint: str | None = field(default=None, repr=False)
    account_created: float | None = None  # epoch seconds the account was created (the group signal's "new")
    payment_accounts: int | None = None  # accounts the provider holds on that instrument now (billing records)
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)  # unknown extras, never read

    def to_dict(self, *, redact: bool = True) -> dict[str, Any]:
        """JSON-ready; with ``redact`` the personal fields are reduced to whether they were given."""
        out: dict[str, Any] = {}
        for name in _FACT_FIELDS:
            value = getattr(self, name)
            if value is None or value in ((), {}):
                continue
            if redact and name in PERSONAL_FIELDS:
                out[name] = "<redacted>"
            elif name == "rtt":
                out[name] = [[s.lat, s.lon, s.ms] for s in value]
            elif isinstance(value, tuple):
                out[name] = list(value)
            else:
                out[name] = value
        return out


#: Facts that are personal data or secrets: never logged or echoed in error messages as given.
PERSONAL_FIELDS = frozenset({"phone", "card_bin", "email", "allow_token", "payment_fingerprint"})
_FACT_FIELDS = tuple(f for f in Facts.__dataclass_fields__ if f != "extra")


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """One finding of one signal.

    ``code`` is stable UPPER_SNAKE and documented (``geowarden.signals.codes``); ``detail`` is a
    one-line sentence for a human reviewer, never shown to the end user as is.
    """

    signal: str
    code: str
    value: Any = None
    confidence: float = 1.0
    detail: str = ""
    source: str | None = None  # which data source said so, where one did

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "signal": self.signal,
            "code": self.code,
            "value": self.value,
            "confidence": round(self.confidence, 4),
            "detail": self.detail,
        }
        if self.source is not None:
            out["source"] = self.source
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The answer for one request or signup, with the reasons behind it."""

    action: Action
    score: float
    reasons: tuple[Evidence, ...]
    policy_version: str
    decision_id: str
    elapsed_us: float
    rules: tuple[str, ...] = ()  # the policy rules that fired
    user_message: str = ""  # what the end user may be told (no detection details)
    evidence: tuple[Evidence, ...] = ()  # everything the signals found, fired or not

    @property
    def allowed(self) -> bool:
        return self.action in (Action.ALLOW, Action.LIMITED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "score": round(self.score, 4),
            "reasons": [e.to_dict() for e in self.reasons],
            "rules": list(self.rules),
            "user_message": self.user_message,
            "policy_version": self.policy_version,
            "decision_id": self.decision_id,
            "elapsed_us": round(self.elapsed_us, 1),
            "evidence": [e.to_dict() for e in self.evidence],
        }
