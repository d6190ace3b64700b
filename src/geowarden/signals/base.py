"""The signal contract: what every signal is, what it may read, and what it gives the policy.

A signal is an object with

- ``name``: the value of ``Evidence.signal`` for everything it reports ("ip", "phone", ...), and
  the name an operator uses to switch it off (``GEOWARDEN_SIGNALS_OFF``) and a policy's fail mode;
- ``codes``: every evidence code it may emit, with its one-line meaning (the published table,
  ``docs/evidence-codes.md``, is generated from these);
- ``evaluate(facts, ctx) -> list[Evidence]``: pure of the facts and the context; I/O (a state
  store, a phone-lookup provider, a BIN table) comes in through the context or the signal's own
  constructor, never a global;
- ``variable``: the name of the CEL variable it contributes to the policy, or None, and
  ``export(found, facts)``: that variable's value for one request, from what the request's
  signals found. ``export`` of an empty ``Found`` is the variable's shape with every field empty:
  the policy compiles and probes its rules against it, so every field is always present;
- ``hint_codes``: the codes by which it points to a restricted jurisdiction, which the policy's
  ``hints`` variable collects across signals (for rules that ask for corroboration).

Signals run in the order of the registry (``geowarden.signals.registry``), ``ip`` first, so the
origin signals can compare with the country the address was placed in (``ctx.ip_country``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Protocol

from geowarden.intel.snapshot import Snapshot
from geowarden.model import Evidence, Facts
from geowarden.signals.thresholds import DEFAULT_BEHAVIOUR, BehaviourConfig
from geowarden.state.base import StateStore


@dataclass(frozen=True, slots=True)
class SignalContext:
    """What a signal may use besides the facts: the intel, the policy's jurisdictions, what the
    signals that ran before it found for this request (``found``, read-only), the behaviour state
    store (None: no per-key state) and the policy's behaviour thresholds."""

    intel: Snapshot
    restricted: frozenset[str]
    found: Sequence[Evidence] = ()
    state: StateStore | None = None
    behaviour: BehaviourConfig = DEFAULT_BEHAVIOUR

    @property
    def ip_country(self) -> str | None:
        """The address's country as the ip signal placed it (``IP_COUNTRY``), None when unknown."""
        for e in self.found:
            if e.code == "IP_COUNTRY" and isinstance(e.value, str):
                return e.value
        return None


@dataclass(frozen=True, slots=True)
class Found:
    """What every signal found for one request, indexed once for the exports: the evidence in
    order, the set of codes, and the value of the first evidence of each code."""

    evidence: Sequence[Evidence] = ()
    codes: frozenset[str] = frozenset()
    first: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, evidence: Sequence[Evidence]) -> Found:
        first: dict[str, Any] = {}
        for e in evidence:
            if e.code not in first:
                first[e.code] = e.value
        return cls(evidence, frozenset(first), first)

    def text(self, code: str) -> str:
        """The first value of ``code`` when it is text, else ``""``."""
        value = self.first.get(code)
        return value if isinstance(value, str) else ""

    def mapping(self, code: str) -> Mapping[str, Any]:
        """The first value of ``code`` when it is a mapping, else an empty one."""
        value = self.first.get(code)
        return value if isinstance(value, Mapping) else {}


NOTHING = Found()


def meanings(table: Mapping[str, tuple[str, str]]) -> Mapping[str, str]:
    """code -> meaning from a module's ``CODES`` table of code -> (signal, meaning)."""
    return MappingProxyType({code: meaning for code, (_, meaning) in table.items()})


class Signal(Protocol):
    """One source of evidence (see the module docstring)."""

    @property
    def name(self) -> str: ...

    @property
    def codes(self) -> Mapping[str, str]: ...

    @property
    def variable(self) -> str | None: ...

    @property
    def hint_codes(self) -> frozenset[str]: ...

    def evaluate(self, facts: Facts, ctx: SignalContext) -> list[Evidence]: ...

    def export(self, found: Found, facts: Facts) -> dict[str, Any]: ...


class BaseSignal:
    """Defaults for a signal that contributes no CEL variable and no hints: a subclass sets
    ``name`` and ``codes`` and writes ``evaluate`` (and, to contribute a variable, ``variable``
    and ``export``)."""

    name: str = ""
    codes: ClassVar[Mapping[str, str]] = MappingProxyType({})
    variable: str | None = None
    hint_codes: frozenset[str] = frozenset()

    def evaluate(self, facts: Facts, ctx: SignalContext) -> list[Evidence]:
        raise NotImplementedError

    def export(self, found: Found, facts: Facts) -> dict[str, Any]:  # noqa: ARG002 - the contract's signature
        return {}

    def __repr__(self) -> str:
        return f"<signal {self.name}>"
