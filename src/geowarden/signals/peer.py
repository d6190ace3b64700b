"""The peer signal: a request's phone number and payment fingerprint against the keyed fingerprints
peers shared.

``geowarden indicators import BUNDLE --peer P --salt-file S`` keeps the peer's phone fingerprints
(``HMAC-SHA256(salt, "phone:<E.164>")``) and payment fingerprints (``HMAC-SHA256(salt,
"payment:<processor fingerprint>")``, ``sharing/fingerprints.py``) in
``$GEOWARDEN_HOME/shared-indicators/P.json`` and the agreed salt beside them (``P.salt``, mode
0600). At start (``Warden.open``) every peer's unexpired fingerprints are loaded into a small
in-memory set per salt; a request with a phone number costs one parse (cached) and one HMAC per
distinct salt, one with a payment fingerprint (``Facts.payment_fingerprint``, the processor's
opaque card id) one HMAC per salt, and a match is ``PEER_PHONE_MATCH`` / ``PEER_PAYMENT_MATCH``
evidence naming the peers and their confidence. Neither value reaches the evidence, a log or an
error. Without any peer fingerprints the signal does nothing. New imports are read at the next start.
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
from geowarden.sharing.fingerprints import fingerprint, normalise, salt_id
from geowarden.signals import phone
from geowarden.signals.base import BaseSignal, Found, SignalContext

NAME = "peer"
log = logging.getLogger("geowarden")

CODES: dict[str, str] = {
    "PEER_PHONE_MATCH": "The phone number's keyed fingerprint (HMAC-SHA256 under the salt agreed with a peer) is on "
    "that peer's shared list (`indicators import --salt-file`): value {peers: peer -> confidence 0-1}; a peer's "
    "word about the number, never the number itself.",
    "PEER_PAYMENT_MATCH": "The account's payment fingerprint, keyed under the salt agreed with a peer, is on that "
    "peer's shared list: a card the peer's coordinated accounts shared; value {peers: peer -> confidence 0-1}, "
    "never the fingerprint.",
}
KINDS = ("phone", "payment")


@dataclass(frozen=True, slots=True)
class FingerprintSet:
    """The fingerprints of the peers that share one salt: HMAC -> {peer: confidence 0-1}, phones and
    payment instruments apart (the HMAC input names the kind, so they never collide anyway)."""

    salt: bytes = field(repr=False)
    phones: dict[str, dict[str, float]]
    payments: dict[str, dict[str, float]] = field(default_factory=dict)


def load_sets(directory: Path, *, now: datetime | None = None) -> list[FingerprintSet]:
    """Every peer's unexpired phone and payment fingerprints under ``directory``, one set per salt.
    A peer without a salt file, or whose fingerprints were made under another salt, is left out
    with one warning line (counts only)."""
    now = now or datetime.now(UTC)
    by_salt: dict[bytes, dict[str, dict[str, dict[str, float]]]] = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("shared fingerprints of %s: unreadable, left out", path.stem)
            continue
        records = [r for r in doc if isinstance(r, dict) and r.get("label") == "shared-fingerprint"] if isinstance(
            doc, list
        ) else []  # fmt: skip
        phones = [r for r in records if r.get("kind") in KINDS and _live(r, now)]
        if not phones:
            continue
        salt_path = path.with_suffix(".salt")
        try:
            salt = salt_path.read_bytes()
        except OSError:
            log.warning("%d fingerprints of %s have no salt (import with --salt-file): not matched",
                        len(phones), path.stem)  # fmt: skip
            continue
        sid = salt_id(salt)
        tables = by_salt.setdefault(salt, {kind: {} for kind in KINDS})
        other = 0
        for r in phones:
            if r.get("salt_id") not in (None, sid):
                other += 1
                continue
            conf = r.get("confidence")
            c = 0.5 if not isinstance(conf, int | float) else max(0.0, min(1.0, conf / 100))
            peers = tables[str(r["kind"])].setdefault(str(r.get("hmac")), {})
            peers[path.stem] = max(peers.get(path.stem, 0.0), c)
        if other:
            log.warning("%d fingerprints of %s were made under another salt: not matched", other, path.stem)
    return [FingerprintSet(salt, t["phone"], t["payment"]) for salt, t in by_salt.items() if t["phone"] or t["payment"]]


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
    on a peer's shared list), ``payment`` (its payment fingerprint is) and ``confidence`` (0-1, the
    surest peer's)."""

    name = NAME
    codes = MappingProxyType(CODES)
    variable = "peer"

    def __init__(self, sets: Sequence[FingerprintSet] = ()) -> None:
        self.sets = tuple(sets)

    @classmethod
    def load(cls, directory: Path) -> PeerSignal:
        return cls(load_sets(directory))

    def __len__(self) -> int:
        return sum(len(s.phones) + len(s.payments) for s in self.sets)

    def evaluate(self, facts: Facts, ctx: SignalContext) -> list[Evidence]:  # noqa: ARG002 - the contract's signature
        if not self.sets:
            return []
        out: list[Evidence] = []
        if facts.phone is not None and (info := phone.parse(facts.phone)).valid:
            peers = self._match("phone", info.e164)
            if peers:
                out.append(_evidence("PEER_PHONE_MATCH", peers, f"{info.masked}: its keyed fingerprint"))
        card = normalise("payment", facts.payment_fingerprint) if facts.payment_fingerprint else None
        if card is not None:
            peers = self._match("payment", card)
            if peers:
                out.append(_evidence("PEER_PAYMENT_MATCH", peers, "the account's payment instrument, keyed,"))
        return out

    def _match(self, kind: str, value: str) -> dict[str, float]:
        peers: dict[str, float] = {}
        for s in self.sets:
            table = s.phones if kind == "phone" else s.payments
            if table:
                for peer, conf in table.get(fingerprint(s.salt, kind, value), {}).items():
                    peers[peer] = max(peers.get(peer, 0.0), conf)
        return dict(sorted(peers.items(), key=lambda kv: (-kv[1], kv[0])))

    def export(self, found: Found, facts: Facts) -> dict[str, Any]:  # noqa: ARG002 - the contract's signature
        codes = ("PEER_PHONE_MATCH", "PEER_PAYMENT_MATCH")
        conf = max((e.confidence for e in found.evidence if e.code in codes), default=0.0)
        return {"phone": codes[0] in found.codes, "payment": codes[1] in found.codes, "confidence": conf}


def _evidence(code: str, peers: dict[str, float], what: str) -> Evidence:
    said = ", ".join(f"{p} (confidence {c:g})" for p, c in peers.items())
    return Evidence(
        signal=NAME,
        code=code,
        value={"peers": peers},
        confidence=max(peers.values()),
        detail=f"{what} is on the list shared by {said}",
        source=f"shared:{next(iter(peers))}",
    )


SIGNAL = PeerSignal()
