"""Every evidence code geowarden emits, with its one-line meaning.

The codes come from the signals themselves (each signal's ``codes``, in registry order), the
step-up verification flow (``otp``), and the codes any signal may emit. This table is the
published documentation of the codes (``docs/evidence-codes.md`` is generated from it by
``python -m geowarden.signals.codes`` and a test keeps the two in step). Codes are stable: a
code may be added or deprecated, never renamed.
"""

from __future__ import annotations

from collections.abc import Sequence

from geowarden.signals import otp
from geowarden.signals.base import Signal
from geowarden.signals.registry import SIGNALS

COMMON: dict[str, tuple[str, str]] = {
    "SIGNAL_UNAVAILABLE": (
        "any",
        "A signal could not answer (its source is missing or its back end is down); value names the "
        "signal, and the policy's fail mode for it (open, closed, review) decides what follows.",
    ),
    "ALLOWLISTED": (
        "allowlist",
        "A genuine, unexpired, unrevoked allowlist token for this account or key was presented; value is "
        "the token id. The policy's rules decide what it clears (allow.matched, allow.clears).",
    ),
    "ALLOWLIST_REVOKED": (
        "allowlist",
        "The allowlist token presented was revoked (its review was reopened); value is the token id. "
        "The request is decided as if no token had been presented.",
    ),
}


def table(signals: Sequence[Signal] = SIGNALS) -> dict[str, tuple[str, str]]:
    """code -> (signal, meaning) for the signals given, the step-up flow and the common codes."""
    out: dict[str, tuple[str, str]] = {}
    entries = [(code, (s.name, meaning)) for s in signals for code, meaning in s.codes.items()]
    for code, entry in [*entries, *otp.CODES.items(), *COMMON.items()]:
        if code in out:
            raise RuntimeError(f"evidence code {code} is defined twice")
        out[code] = entry
    return out


#: Every code of the registered signals.
CODES: dict[str, tuple[str, str]] = table()


def markdown() -> str:
    lines = [
        "# Evidence codes",
        "",
        "Generated from the signals' own tables (`geowarden/signals/codes.py`).",
        "",
        "| code | signal | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| `{code}` | {signal} | {meaning} |" for code, (signal, meaning) in CODES.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
