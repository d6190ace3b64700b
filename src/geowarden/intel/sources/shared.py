"""Peers' shared indicators as snapshot sources: ``$GEOWARDEN_HOME/shared-indicators/<peer>.json``
as ``geowarden indicators import`` writes it (see ``geowarden.sharing.stix``).

Each peer file becomes one source ``shared:<peer>`` of the ``label`` kind whose label is
``shared-indicator`` (``format.SHARED_LABEL``): its networks as ranges, its ASNs in
``asn_labels``, each with the indicator's confidence (0-100; 50, STIX's "medium", when the peer
gave none). The builder keeps these apart from the anonymiser labels: they set no flag and name no
provider, they only record which peer said so with which confidence. Indicators whose
``valid_until`` has passed by the time of the build are dropped and counted in the source's
notes; records of another shape (payment and phone fingerprints, which the live path reads, or
anything malformed) are not address indicators and are left out here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from geowarden.errors import SourceError
from geowarden.intel.format import SHARED_LABEL, SHARED_PREFIX
from geowarden.intel.sources.base import SourceData, SourceKind, SourceMeta

#: Where ``indicators import`` writes each peer's records, under ``$GEOWARDEN_HOME``.
SHARED_DIR = "shared-indicators"
#: Confidence of an indicator that carries none (STIX 2.1's "medium").
DEFAULT_CONFIDENCE = 50


def _until(value: Any) -> datetime | None:
    if value is None:
        return None
    when = datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def load_peer(path: Path, *, now: datetime | None = None) -> tuple[SourceData, int]:
    """One peer's records file as a source (``shared:<file stem>``; ``asn_labels`` map an ASN to
    ``(label, confidence as text)``) and how many expired indicators it dropped. Raises
    SourceError, one line, when the file is not a list of records."""
    now = now or datetime.now(UTC)
    peer = path.stem
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        imported = datetime.fromtimestamp(path.stat().st_mtime, UTC).date().isoformat()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise SourceError(f"{path}: not JSON ({str(exc)[:80]})") from None
    if not isinstance(doc, list):
        raise SourceError(f"{path}: not a shared-indicators file (a JSON list, as `indicators import` writes)")
    src = SourceData(
        meta=SourceMeta(
            name=SHARED_PREFIX + peer,
            title=f"Indicators shared by {peer} (STIX 2.1, `geowarden indicators import`)",
            kind=SourceKind.LABEL,
            licence="shared by the peer under its TLP marking",
            date=imported,  # when it was imported
            files=(str(path),),
        )
    )
    expired = other = 0
    for rec in doc:
        if not isinstance(rec, dict) or rec.get("label") != SHARED_LABEL:
            other += 1
            continue
        try:
            until = _until(rec.get("valid_until"))
            conf = rec.get("confidence")
            conf = DEFAULT_CONFIDENCE if conf is None else max(0, min(100, int(conf)))
            if until is not None and until < now:
                expired += 1
            elif "asn" in rec:
                src.asn_labels[int(rec["asn"])] = (SHARED_LABEL, str(max(conf, _conf_of(src, int(rec["asn"])))))
            elif "network" in rec:
                src.add_network(str(rec["network"]), (SHARED_LABEL, conf))
            else:
                src.skipped += 1
        except (TypeError, ValueError):
            src.skipped += 1
    notes = []
    if expired:
        notes.append(f"{expired:,} expired indicators dropped at build")
    if src.skipped:
        notes.append(f"{src.skipped:,} malformed records left out")
    if other:
        notes.append(f"{other:,} records that are not address indicators (fingerprints) left to the live path")
    if notes:
        src.meta = SourceMeta(**{**_fields(src.meta), "notes": "; ".join(notes)})
    return src, expired


def _conf_of(src: SourceData, asn: int) -> int:
    """The confidence already recorded for an ASN (0 when none): two indicators for one ASN keep the higher."""
    got = src.asn_labels.get(asn)
    return int(got[1]) if got else 0


def _fields(meta: SourceMeta) -> dict[str, Any]:
    return {name: getattr(meta, name) for name in SourceMeta.__dataclass_fields__}


def note_of(peers: list[tuple[SourceData, int]]) -> str:
    """What a build's note says of the peers' indicators: ``"; indicators shared by 2 peers (3
    expired indicators dropped)"``, or nothing without peers."""
    if not peers:
        return ""
    expired = sum(n for _, n in peers)
    dropped = f" ({expired:,} expired indicators dropped)" if expired else ""
    return f"; indicators shared by {len(peers)} peer{'s' if len(peers) > 1 else ''}{dropped}"


def load_all(home: Path, *, now: datetime | None = None) -> list[tuple[SourceData, int]]:
    """Every peer's indicators under ``home/shared-indicators`` (none when the directory is absent),
    in peer order, each with how many expired indicators it dropped."""
    directory = home / SHARED_DIR
    if not directory.is_dir():
        return []
    return [load_peer(p, now=now) for p in sorted(directory.glob("*.json"))]
