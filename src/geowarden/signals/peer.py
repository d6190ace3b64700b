"""The peer signal: a request's phone number against the keyed fingerprints peers shared.

``geowarden indicators import BUNDLE --peer P --salt-file S`` keeps the peer's phone fingerprints
(``HMAC-SHA256(salt, "phone:<E.164>")``, ``sharing/fingerprints.py``) in
``$GEOWARDEN_HOME/shared-indicators/P.json`` and the agreed salt beside them (``P.salt``, mode
0600). At start (``Warden.open``) every peer's unexpired phone fingerprints are loaded into a small
in-memory set per salt; a request with a phone number costs one parse (cached) and one HMAC per
distinct salt, and a match is ``PEER_PHONE_MATCH`` evidence naming the peers and their confidence.
The number itself never reaches the evidence, a log or an error. Without any peer fingerprints the
signal does nothing. Payment fingerprints are kept on import but not matched here: a request's
facts carry a card's BIN, not a payment fingerprint. New imports are read at the next start.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from geowarden.model import Evidence, Facts
from geowarden.sharing.fingerprints import fingerprint, salt_id
from geowarden.signals import phone
from geowarden.signals.base import BaseSignal, Found, SignalContext

NAME = "peer"
log = logging.getLogger("geowarden")

CODES: dict[str, str] = {
    "PEER_PHONE_MATCH": "The phone number's keyed fingerprint (HMAC-SHA256 under the salt agreed with a peer) is on "
    "that peer's shared list (`indicators import --salt-file`): value {peers: peer -> confidence 0-1}; a peer's "
    "word about the number, never the number itself.",
}


@dataclass(frozen=True, slots=True)
class FingerprintSet:
    """The phone fingerprints of the peers that share one salt: HMAC -> {peer: confidence 0-1}."""

    salt: bytes = field(repr=False)
    phones: dict[str, dict[str, float]]


def load_sets(directory: Path, *, now: datetime | None = None) -> list[FingerprintSet]:
    """Every peer's unexpired phone fingerprints under ``directory``, one set per distinct salt.
    A peer without a salt file, or whose fingerprints were made under another salt, is left out
    with one warning line (counts only)."""
    now = now or datetime.now(UTC)
    by_salt: dict[bytes, dict[str, dict[str, float]]] = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("shared fingerprints of %s: unreadable, left out", path.stem)
            continue
        records = [r for r in doc if isinstance(r, dict) and r.get("label") == "shared-fingerprint"] if isinstance(
            doc, list
        ) else []  # fmt: skip
        phones = [r for r in records if r.get("kind") == "phone" and _live(r, now)]
        if not phones:
            continue
        salt_path = path.with_suffix(".salt")
        try:
            salt = salt_path.read_bytes()
        except OSError:
            log.warning("%d phone fingerprints of %s have no salt (import with --salt-file): not matched",
                        len(phones), path.stem)  # fmt: skip
            continue
        sid = salt_id(salt)
        table = by_salt.setdefault(salt, {})
        other = 0
        for r in phones:
            if r.get("salt_id") not in (None, sid):
                other += 1
                continue
            conf = r.get("confidence")
            c = 0.5 if not isinstance(conf, int | float) else max(0.0, min(1.0, conf / 100))
            peers = table.setdefault(str(r.get("hmac")), {})
            peers[path.stem] = max(peers.get(path.stem, 0.0), c)
        if other:
            log.warning("%d phone fingerprints of %s were made under another salt: not matched", other, path.stem)
    return [FingerprintSet(salt, phones) for salt, phones in by_salt.items() if phones]


def _live(record: dict[str, Any], now: datetime) -> bool:
    until = record.get("valid_until")
    if until is None:
        return True
    try:
        when = datetime.fromisoformat(str(until))
    except ValueError:
        return False
    return (when if when.tzinfo else when.replace(tzinfo=UTC)) >= now


class PeerSignal(BaseSignal):
    """The ``peer`` signal and its CEL variable ``peer``: ``phone`` (the request's phone number is
    on a peer's shared list) and ``confidence`` (0-1, the surest peer's)."""

    name = NAME
    codes = MappingProxyType(CODES)
    variable = "peer"

    def __init__(self, sets: Sequence[FingerprintSet] = ()) -> None:
        self.sets = tuple(sets)

    @classmethod
    def load(cls, directory: Path) -> PeerSignal:
        return cls(load_sets(directory))

    def __len__(self) -> int:
        return sum(len(s.phones) for s in self.sets)

    def evaluate(self, facts: Facts, ctx: SignalContext) -> list[Evidence]:  # noqa: ARG002 - the contract's signature
        if not self.sets or facts.phone is None:
            return []
        info = phone.parse(facts.phone)
        if not info.valid:
            return []
        peers: dict[str, float] = {}
        for s in self.sets:
            for peer, conf in s.phones.get(fingerprint(s.salt, "phone", info.e164), {}).items():
                peers[peer] = max(peers.get(peer, 0.0), conf)
        if not peers:
            return []
        peers = dict(sorted(peers.items(), key=lambda kv: (-kv[1], kv[0])))
        said = ", ".join(f"{p} (confidence {c:g})" for p, c in peers.items())
        return [
            Evidence(
                signal=NAME,
                code="PEER_PHONE_MATCH",
                value={"peers": peers},
                confidence=max(peers.values()),
                detail=f"{info.masked}: its keyed fingerprint is on the list shared by {said}",
                source=f"shared:{next(iter(peers))}",
            )
        ]

    def export(self, found: Found, facts: Facts) -> dict[str, Any]:  # noqa: ARG002 - the contract's signature
        hit = "PEER_PHONE_MATCH" in found.codes
        conf = max((e.confidence for e in found.evidence if e.code == "PEER_PHONE_MATCH"), default=0.0) if hit else 0.0
        return {"phone": hit, "confidence": conf}


SIGNAL = PeerSignal()
