"""Permissively licensed lists vendored inside geowarden itself (``intel/data/``).

``x4bnet.tar.xz``
    X4BNet/lists_vpn (MIT): the VPN and datacenter netblock lists, the per-provider VPN inputs
    (Apple Private Relay, Mullvad, PIA, Proton) and the datacenter and VPN ASN lists, unchanged,
    with the MIT notice. They are parsed by :mod:`.lists` exactly as the full build parses
    ``anonymizers/x4bnet/``, under the same source names (``x4bnet-*``).

``vendored.json`` records each archive's data date, licence, attribution and upstream URL;
``scripts/vendor_lists.py`` writes both from a data directory. An archive whose record lacks a
licence or a date is refused. Only MIT, CC0 or CC BY lists are vendored: never a GPL list.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from geowarden.errors import SourceError
from geowarden.intel.sources.base import SourceData
from geowarden.intel.sources.lists import loaders as list_loaders

#: Licences a vendored list may carry (SPDX ids).
ALLOWED_LICENCES = frozenset({"MIT", "CC0-1.0", "CC-BY-4.0", "PDDL-1.0"})


def data_dir() -> Path:
    """Where the vendored archives live inside the installed package."""
    return Path(str(importlib.resources.files("geowarden.intel") / "data"))


def records(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """``vendored.json``: archive name -> its record; SourceError if it cannot be read."""
    path = (directory or data_dir()) / "vendored.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SourceError(f"intel/data/{path.name}: cannot read: {exc}") from exc
    if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
        raise SourceError(f"intel/data/{path.name}: not an object of records")
    return doc


def _check(name: str, record: dict[str, Any]) -> None:
    licence = record.get("licence")
    if not licence or not record.get("date"):
        missing = "licence" if not licence else "date"
        raise SourceError(f"intel/data/vendored.json: {name} has no {missing}: refusing to build it into the default")
    if licence not in ALLOWED_LICENCES:
        raise SourceError(f"intel/data/vendored.json: {name} is {licence}, not a licence geowarden may redistribute")


def x4bnet_sources(directory: Path | None = None) -> list[SourceData]:
    """The vendored X4BNet lists, parsed as the full build parses ``anonymizers/x4bnet/``."""
    directory = directory or data_dir()
    record = records(directory).get("x4bnet")
    if record is None:
        raise SourceError("intel/data/vendored.json: no x4bnet record")
    _check("x4bnet", record)
    archive = directory / str(record.get("file", ""))
    out = []
    with tempfile.TemporaryDirectory(prefix="geowarden-vendored-") as tmp:
        try:
            with tarfile.open(archive, "r:xz") as tar:
                tar.extractall(tmp, filter="data")
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise SourceError(f"intel/data/{archive.name}: cannot unpack: {' '.join(str(exc).split())}") from exc
        for name, load in list_loaders(Path(tmp)):
            if not name.startswith("x4bnet"):
                continue
            data = load()
            data.meta = dataclasses.replace(
                data.meta,
                licence=str(record["licence"]),
                attribution=str(record.get("attribution") or data.meta.attribution or ""),
                date=str(record["date"]),
                files=tuple(f"geowarden:intel/data/{archive.name}:{f}" for f in data.meta.files),
            )
            out.append(data)
    if not out:
        raise SourceError(f"intel/data/{archive.name}: holds no X4BNet list")
    return out
