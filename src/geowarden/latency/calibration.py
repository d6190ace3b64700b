"""An operator's latency calibration: a mesh of landmark pings in, a calibration file out, and back.

The mesh is one measured pair of landmarks a row, as CSV (a header naming the columns, or none
and the columns in this order) or as JSON Lines with the same keys::

    a_lat,a_lon,b_lat,b_lon,rtt_ms,a_name,b_name
    50.11,8.68,52.37,4.90,6.8,fra1,ams1

``rtt_ms`` is the smallest of several pings (min-of-N); the names are optional. A landmark is its
position (to 0.01 degree, ~1 km, as ``model.Calibration`` matches them); a pair given several
times, in either direction, keeps its smallest RTT. ``MeshParser`` reads a row at a time and
raises ``InputError("line N: reason")`` for a bad one; ``Mesh`` collects the rows;
``calibrate`` runs ``model.calibrate`` on it.

A calibration file is ``Calibration.to_dict()`` with a header (``format``, ``version``,
``created``, ``mesh``). ``load`` reads one back, or one saved by hand from ``to_dict()``, and
refuses anything else with a one-line ``ConfigError`` naming the file. Nothing here reads the
environment: where the Warden finds the file is ``Settings.latency_calibration_file``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from geowarden.errors import ConfigError, InputError
from geowarden.latency.model import DEFAULT_MIN_PAIRS, Calibration
from geowarden.latency.model import calibrate as calibrate_mesh

#: The mesh's columns, in the order a CSV without a header gives them.
MESH_COLUMNS = ("a_lat", "a_lon", "b_lat", "b_lon", "rtt_ms")
NAME_COLUMNS = ("a_name", "b_name")
#: No round trip on Earth takes this long (a geostationary hop is ~600 ms): a unit error (us, not ms).
MAX_RTT_MS = 10_000.0
#: A mesh is an (n, n) matrix several times over in ``model.calibrate``: this many landmarks is ~1 GB.
MAX_LANDMARKS = 5_000
MAX_NAME = 100
#: What a calibration file says it is, and the newest version this code reads.
FORMAT = "geowarden-latency-calibration"
VERSION = 1
_MAX_TOKEN = 40  # characters of an offending token quoted in an error message


class MeshHeaderError(InputError):
    """The first line of a mesh file is neither a usable header nor a row: nothing can be read."""


def _quote(text: str) -> str:
    return repr(text if len(text) <= _MAX_TOKEN else text[:_MAX_TOKEN] + "...")


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise InputError(f"{what} is not a number: {value!r}")
    if isinstance(value, int | float):
        x = float(value)
    elif isinstance(value, str):
        try:
            x = float(value.strip())
        except ValueError:
            raise InputError(f"{what} is not a number: {_quote(value.strip())}") from None
    elif value is None:
        raise InputError(f"{what} is missing")
    else:
        raise InputError(f"{what} is not a number")
    if not math.isfinite(x):
        raise InputError(f"{what} is not a finite number")
    return x


def _name(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{what} must be text")
    name = value.strip()
    if len(name) > MAX_NAME or not name.isprintable():
        raise InputError(f"{what} must be printable text of at most {MAX_NAME} characters")
    return name


def _key(lat: float, lon: float) -> tuple[int, int]:
    return (round(lat * 100), round(lon * 100))  # as ``model.Calibration``: ~1 km


@dataclass(frozen=True, slots=True)
class MeshRow:
    """One measured pair: landmark A, landmark B, the smallest RTT between them (ms)."""

    a_lat: float
    a_lon: float
    b_lat: float
    b_lon: float
    rtt_ms: float
    a_name: str = ""
    b_name: str = ""


def _row(get: dict[str, Any]) -> MeshRow:
    a_lat, a_lon = _number(get.get("a_lat"), "a_lat"), _number(get.get("a_lon"), "a_lon")
    b_lat, b_lon = _number(get.get("b_lat"), "b_lat"), _number(get.get("b_lon"), "b_lon")
    for what, lat, lon in (("a", a_lat, a_lon), ("b", b_lat, b_lon)):
        if not -90.0 <= lat <= 90.0:
            raise InputError(f"{what}_lat {lat:g} is outside [-90, 90]")
        if not -180.0 <= lon <= 180.0:
            raise InputError(f"{what}_lon {lon:g} is outside [-180, 180]")
    ms = _number(get.get("rtt_ms"), "rtt_ms")
    if not ms > 0.0:
        raise InputError(f"rtt_ms {ms:g} is not positive")
    if ms > MAX_RTT_MS:
        raise InputError(f"rtt_ms {ms:g} is above {MAX_RTT_MS:,.0f} ms (microseconds given as ms?)")
    return MeshRow(
        a_lat, a_lon, b_lat, b_lon, ms, _name(get.get("a_name"), "a_name"), _name(get.get("b_name"), "b_name")
    )


class MeshParser:
    """Parses a mesh file's lines one at a time; the first line sets the format (JSON Lines when it
    starts with ``{``, else CSV with or without a header)."""

    def __init__(self) -> None:
        self.jsonl: bool | None = None
        self.columns: dict[str, int] | None = None

    def parse(self, text: str, line_no: int) -> MeshRow | None:
        """The row of one non-blank line, or None for the CSV header. Raises ``InputError("line N:
        reason")``, and ``MeshHeaderError`` when the first line makes the file unreadable."""
        try:
            return self._parse(text, line_no)
        except MeshHeaderError:
            raise
        except InputError as e:
            raise InputError(f"line {line_no}: {e.message}") from None

    def _parse(self, text: str, line_no: int) -> MeshRow | None:
        if self.jsonl is None:
            self.jsonl = text.lstrip().startswith("{")
        if self.jsonl:
            try:
                doc = json.loads(text)
            except json.JSONDecodeError as e:
                raise InputError(f"not valid JSON ({e.msg} at column {e.colno})") from None
            except RecursionError:
                raise InputError("not valid JSON (nested too deeply)") from None
            if not isinstance(doc, dict):
                raise InputError(f"expected a JSON object with {', '.join(MESH_COLUMNS)}")
            return _row(doc)
        fields = next(csv.reader([text]), [])
        if self.columns is None:
            self.columns = self._header(fields, line_no)
            if self.columns is not None:
                return None
            self.columns = {c: k for k, c in enumerate(MESH_COLUMNS + NAME_COLUMNS)}
        need = max(self.columns[c] for c in MESH_COLUMNS) + 1
        if len(fields) < need:
            raise InputError(f"expected at least {need} comma-separated columns, got {len(fields)}")
        return _row({c: fields[k] for c, k in self.columns.items() if k < len(fields)})

    @staticmethod
    def _header(fields: list[str], line_no: int) -> dict[str, int] | None:
        """The columns a header names; None when the first line is a row (it starts with a number)."""
        first = fields[0].strip() if fields else ""
        try:
            float(first)
        except ValueError:
            pass
        else:
            return None
        names = [f.strip().lower() for f in fields]
        missing = [c for c in MESH_COLUMNS if c not in names]
        if missing:
            raise MeshHeaderError(
                f"line {line_no}: the header must name the columns {', '.join(MESH_COLUMNS)} "
                f"(missing: {', '.join(missing)})"
            )
        return {c: names.index(c) for c in MESH_COLUMNS + NAME_COLUMNS if c in names}


@dataclass
class Mesh:
    """Landmarks by position and the smallest RTT of each pair, from the rows added so far."""

    lat: list[float] = field(default_factory=list)
    lon: list[float] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    rows: int = 0
    _at: dict[tuple[int, int], int] = field(default_factory=dict)
    _named: dict[str, tuple[tuple[int, int], int]] = field(default_factory=dict)  # name -> position, line
    _rtt: dict[tuple[int, int], float] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.lat)

    @property
    def pairs(self) -> int:
        return len(self._rtt)

    def add(self, row: MeshRow, line: int = 0) -> None:
        """Count the row (of ``line``) in; ``InputError`` (nothing added) for a pair of one landmark
        with itself, a name given to two positions, or one landmark too many."""
        ka, kb = _key(row.a_lat, row.a_lon), _key(row.b_lat, row.b_lon)
        if ka == kb:
            raise InputError("a_* and b_* are the same landmark (within 0.01 degree)")
        if row.a_name and row.a_name == row.b_name:
            raise InputError(f"a_name and b_name are both {_quote(row.a_name)} at different positions")
        for name, k, lat, lon in ((row.a_name, ka, row.a_lat, row.a_lon), (row.b_name, kb, row.b_lat, row.b_lon)):
            seen = self._named.get(name) if name else None
            if seen is not None and seen[0] != k:
                i = self._at[seen[0]]
                raise InputError(
                    f"landmark {_quote(name)} is at ({lat:g}, {lon:g}) here but at "
                    f"({self.lat[i]:g}, {self.lon[i]:g}) on line {seen[1]}"
                )
        new = (ka not in self._at) + (kb not in self._at)
        if self.n + new > MAX_LANDMARKS:
            raise InputError(f"more than {MAX_LANDMARKS:,} landmarks: split the mesh by region")
        i = self._landmark(ka, row.a_lat, row.a_lon, row.a_name, line)
        j = self._landmark(kb, row.b_lat, row.b_lon, row.b_name, line)
        pair = (min(i, j), max(i, j))
        self._rtt[pair] = min(row.rtt_ms, self._rtt.get(pair, math.inf))
        self.rows += 1

    def _landmark(self, k: tuple[int, int], lat: float, lon: float, name: str, line: int) -> int:
        i = self._at.get(k)
        if i is None:
            i = self._at[k] = self.n
            self.lat.append(lat)
            self.lon.append(lon)
            self.names.append(name)
        elif name and not self.names[i]:
            self.names[i] = name
        if name:
            self._named.setdefault(name, (k, line))
        return i

    def matrix(self) -> npt.NDArray[np.float64]:
        """The (n, n) RTT matrix, symmetric, NaN where a pair was not measured."""
        rtt = np.full((self.n, self.n), np.nan)
        if self._rtt:
            ij = np.array(list(self._rtt.keys()), dtype=np.intp)
            ms = np.fromiter(self._rtt.values(), dtype=np.float64, count=len(self._rtt))
            rtt[ij[:, 0], ij[:, 1]] = ms
            rtt[ij[:, 1], ij[:, 0]] = ms
        return rtt

    def pairs_of(self) -> npt.NDArray[np.int64]:
        """How many measured pairs each landmark has."""
        counts = np.zeros(self.n, dtype=np.int64)
        for i, j in self._rtt:
            counts[i] += 1
            counts[j] += 1
        return counts


def calibrate(mesh: Mesh) -> Calibration:
    """``model.calibrate`` on the mesh, with its defaults (the rule's figures rest on them)."""
    if mesh.n < 2 or mesh.pairs == 0:
        raise InputError(f"a calibration needs measured pairs of landmarks ({mesh.n} landmarks, {mesh.pairs} pairs)")
    names = [nm or f"({a:g}, {b:g})" for nm, a, b in zip(mesh.names, mesh.lat, mesh.lon, strict=True)]
    return calibrate_mesh(np.asarray(mesh.lat), np.asarray(mesh.lon), mesh.matrix(), names=names)


def summary(cal: Calibration, mesh: Mesh | None = None) -> dict[str, Any]:
    """What a calibration holds, JSON-ready: landmarks calibrated, left on the physical bound,
    suspect and inconsistent, and whether it carries the expected-RTT ceiling."""

    def where(lm: Any) -> dict[str, Any]:
        return {"name": lm.name, "lat": lm.lat, "lon": lm.lon}

    calibrated = [lm for lm in cal.landmarks if lm.pairs >= DEFAULT_MIN_PAIRS]
    doc: dict[str, Any] = {
        "landmarks": len(cal.landmarks),
        "calibrated": len(calibrated),
        "physical": len(cal.landmarks) - len(calibrated),
        "median_speed_km_per_ms": (
            round(float(np.median([lm.bound.speed_km_per_ms for lm in calibrated])), 1) if calibrated else None
        ),
        "suspect": [where(lm) for lm in cal.landmarks if lm.reliability < 1.0],
        "inconsistent": [where(lm) for lm in cal.inconsistent],
        "ceiling": cal.ceiling is not None,
    }
    if mesh is not None:
        doc["mesh"] = {"rows": mesh.rows, "pairs": mesh.pairs, "landmarks": mesh.n}
    return doc


def save(cal: Calibration, path: Path, mesh: Mesh | None = None) -> None:
    """Write the calibration file atomically (a reader sees the old file or the new, never half)."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if mesh is not None:
        doc["mesh"] = {"rows": mesh.rows, "pairs": mesh.pairs, "landmarks": mesh.n}
    doc.update(cal.to_dict())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".calibration-", suffix=".tmp", dir=path.parent)
        try:
            Path(tmp).chmod(0o644)  # not a secret; a service running as another user reads it
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent=1, allow_nan=False)
                fh.write("\n")
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"cannot write the calibration {path}: {exc.strerror or exc}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(doc: Any, where: str = "") -> None:
    if isinstance(doc, float) and not math.isfinite(doc):
        raise ValueError(f"{where or 'a value'} is not a finite number")
    if isinstance(doc, dict):
        for k, v in doc.items():
            _finite(v, f"{where}.{k}" if where else str(k))
    elif isinstance(doc, list):
        for k, v in enumerate(doc):
            _finite(v, f"{where}[{k}]")


def _check_landmarks(doc: dict[str, Any], key: str) -> None:
    items = doc.get(key, [])
    if not isinstance(items, list):
        raise ValueError(f"'{key}' must be a list")
    for k, x in enumerate(items):
        if not isinstance(x, dict):
            raise ValueError(f"{key}[{k}] must be an object")
        for part in ("lat", "lon", "speed_km_per_ms"):
            v = x.get(part)
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ValueError(f"{key}[{k}].{part} must be a number")
        if not (-90.0 <= x["lat"] <= 90.0 and -180.0 <= x["lon"] <= 180.0):
            raise ValueError(f"{key}[{k}] is outside the globe")


def from_document(doc: Any) -> Calibration:
    """A calibration from a parsed file; ``ValueError`` with a short reason when it is not one."""
    if not isinstance(doc, dict):
        raise ValueError("expected a JSON object")
    if "format" in doc and doc["format"] != FORMAT:
        raise ValueError(f"format is {_quote(str(doc['format']))}, not {FORMAT!r}")
    version = doc.get("version", VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError("version must be a positive whole number")
    if version > VERSION:
        raise ValueError(f"version {version} is newer than this geowarden reads ({VERSION})")
    if not isinstance(doc.get("landmarks"), list):
        raise ValueError("no 'landmarks' list")
    _finite(doc)
    _check_landmarks(doc, "landmarks")
    _check_landmarks(doc, "inconsistent")
    ceiling = doc.get("ceiling")
    if ceiling is not None and not isinstance(ceiling, dict):
        raise ValueError("'ceiling' must be an object")
    if (
        ceiling
        and isinstance(ceiling.get("ms"), list)
        and any(isinstance(x, int | float) and x < 0 for x in ceiling["ms"])
    ):
        raise ValueError("ceiling.ms must be >= 0 ms")
    try:
        return Calibration.from_dict(doc)
    except KeyError as exc:
        raise ValueError(f"missing {exc}") from None
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


def load(path: Path) -> Calibration:
    """The calibration saved in ``path``; a one-line ``ConfigError`` naming the file when it cannot
    be read or is not a calibration."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:  # ValueError: undecodable bytes, a NUL in the path
        reason = getattr(exc, "strerror", None) or ("not UTF-8 text" if isinstance(exc, UnicodeError) else exc)
        raise ConfigError(f"cannot read the latency calibration {path}: {reason}", file=str(path)) from None
    try:
        doc = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"latency calibration {path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})",
            file=str(path),
            line=e.lineno,
        ) from None
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"latency calibration {path}: not valid JSON ({exc or 'nested too deeply'})") from None
    try:
        return from_document(doc)
    except ValueError as exc:
        raise ConfigError(f"latency calibration {path}: not a usable calibration: {exc}", file=str(path)) from None
