"""The registry: every signal, in the order a Warden runs them, and how an operator configures them.

The policy reads the registry to assemble its CEL context (each signal's ``variable`` and
``export``) and to know every evidence code; ``docs/evidence-codes.md`` is generated from it.
Adding a signal is one module that implements ``signals.base.Signal`` and one line in
``SIGNALS`` (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from geowarden.errors import ConfigError
from geowarden.latency.model import Calibration
from geowarden.signals import behaviour, card, client, email, group, network, peer, phone, rtt, screening
from geowarden.signals.base import Signal

#: Every signal with its default configuration, ``ip`` first (the origin signals compare with it).
SIGNALS: tuple[Signal, ...] = (
    network.SIGNAL,
    phone.SIGNAL,
    card.SIGNAL,
    email.SIGNAL,
    client.SIGNAL,
    rtt.SIGNAL,
    behaviour.SIGNAL,
    group.SIGNAL,
    screening.SIGNAL,
    peer.SIGNAL,
)


def names(signals: Sequence[Signal] = SIGNALS) -> tuple[str, ...]:
    return tuple(s.name for s in signals)


def configure(
    *,
    off: Iterable[str] = (),
    bin_table: Path | None = None,
    screening_data: Path | None = None,
    phone_lookup: phone.LineTypeProvider | None = None,
    shared_dir: Path | None = None,
    rtt_calibration: Calibration | None = None,
    signals: Sequence[Signal] = SIGNALS,
) -> tuple[Signal, ...]:
    """The signals to run: ``signals`` with the operator's data sources plugged in (a BIN table,
    the sanctions lists, a live phone line-type provider, the phone fingerprints peers shared under
    ``shared_dir``, the latency calibration of the landmarks) and the ones named in ``off`` left out.
    An unknown name in ``off`` is a ``ConfigError`` (a typo must not leave a signal running)."""
    off = frozenset(off)
    known = names(signals)
    unknown = sorted(off - set(known))
    if unknown:
        raise ConfigError(f"GEOWARDEN_SIGNALS_OFF: unknown signal(s) {', '.join(unknown)} (known: {', '.join(known)})")
    plugged: dict[str, Signal] = {}
    if bin_table is not None:
        plugged[card.NAME] = card.CardSignal(table_path=bin_table)
    if screening_data is not None:
        plugged[screening.NAME] = screening.ScreeningSignal(screening_data)
    if phone_lookup is not None:
        plugged[phone.NAME] = phone.PhoneSignal(phone_lookup)
    if rtt_calibration is not None:
        plugged[rtt.NAME] = rtt.LatencySignal(rtt_calibration)
    if shared_dir is not None and peer.NAME not in off:
        loaded = peer.PeerSignal.load(shared_dir)
        if len(loaded):
            plugged[peer.NAME] = loaded
    return tuple(plugged.get(s.name, s) for s in signals if s.name not in off)
