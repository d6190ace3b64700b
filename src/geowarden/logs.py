"""API log events (DESIGN.md "API log events"): read JSON Lines (optionally gzip) or Parquet.

One event per request. A malformed row is reported with its line number and reason and skipped;
it never stops the run and is always counted (``LogReader.skipped``). Unknown extra columns are
kept in ``extra`` and otherwise ignored.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from geowarden.errors import ConfigError, InputError
from geowarden.intel import addr
from geowarden.model import Facts

REQUIRED = ("ts", "request_id", "account_id", "api_key_id", "ip")
OPTIONAL_TEXT = ("user_agent", "accept_language", "client_tz", "pop", "model", "prompt_fingerprint")
OPTIONAL_NUM = ("rtt_ms", "input_tokens", "output_tokens", "status")


@dataclass(frozen=True, slots=True)
class LogEvent:
    line: int
    ts: float  # epoch seconds
    request_id: str
    account_id: str
    api_key_id: str
    ip: str
    user_agent: str | None = None
    accept_language: str | None = None
    client_tz: str | None = None
    pop: str | None = None
    model: str | None = None
    prompt_fingerprint: str | None = None
    rtt_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    status: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def facts(self) -> Facts:
        return Facts(
            ip=self.ip,
            timestamp=self.ts,
            account_id=self.account_id,
            api_key_id=self.api_key_id,
            accept_language=self.accept_language,
            timezone=self.client_tz,
            user_agent=self.user_agent,
            input_tokens=self.input_tokens,
        )


@dataclass(slots=True)
class LogProblem:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.reason}"


class LogReader:
    """Iterate the events of one or more log files; problems are collected, not raised."""

    def __init__(self, paths: list[Path], *, max_problems: int = 1000) -> None:
        for p in paths:
            if not Path(p).is_file():
                raise ConfigError(f"{p}: no such log file")
        self.paths = [Path(p) for p in paths]
        self.problems: list[LogProblem] = []
        self.skipped = 0
        self.read = 0
        self._max = max_problems

    def __iter__(self) -> Iterator[LogEvent]:
        for path in self.paths:
            rows = _parquet_rows(path) if path.suffix == ".parquet" else _json_rows(path)
            for line, row in rows:
                self.read += 1
                try:
                    yield parse_event(row, line)
                except InputError as exc:
                    self.skipped += 1
                    if len(self.problems) < self._max:
                        self.problems.append(LogProblem(str(path), line, exc.message))


def parse_event(row: Any, line: int) -> LogEvent:
    if isinstance(row, _Bad):
        raise InputError(row.reason)
    if not isinstance(row, dict):
        raise InputError("not a JSON object")
    missing = [k for k in REQUIRED if row.get(k) in (None, "")]
    if missing:
        raise InputError(f"missing {', '.join(missing)}")
    try:
        addr.parse(str(row["ip"]))
    except InputError:
        raise InputError("ip is not an IP address") from None
    kw: dict[str, Any] = {"line": line, "ts": _ts(row["ts"])}
    for k in ("request_id", "account_id", "api_key_id", "ip"):
        kw[k] = str(row[k]).strip()
    for k in OPTIONAL_TEXT:
        if row.get(k) is not None:
            kw[k] = str(row[k])
    for k in OPTIONAL_NUM:
        v = row.get(k)
        if v is None or v == "":
            continue
        try:
            kw[k] = float(v) if k == "rtt_ms" else int(v)
        except (TypeError, ValueError):
            raise InputError(f"{k} is not a number") from None
    kw["extra"] = {k: v for k, v in row.items() if k not in kw and k not in REQUIRED}
    return LogEvent(**kw)


def _ts(value: Any) -> float:
    if isinstance(value, bool):
        raise InputError("ts is not a time")
    if isinstance(value, (int, float)):
        return float(value) / 1000.0  # epoch milliseconds
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InputError("ts is neither ISO 8601 nor epoch milliseconds") from None


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


def _json_rows(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        with _open_text(path) as fh:
            for n, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                try:
                    yield n, json.loads(text)
                except json.JSONDecodeError as exc:
                    yield n, _Bad(f"not JSON: {exc.msg}")
    except (OSError, EOFError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None


class _Bad(dict[str, Any]):
    """A row that could not be decoded; parse_event reports it."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


def _parquet_rows(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        import pyarrow.parquet as pq  # noqa: PLC0415 - optional dependency
    except ImportError:
        raise ConfigError(f"{path}: reading Parquet needs pyarrow (pip install 'geowarden[parquet]')") from None
    table = pq.read_table(path)
    yield from enumerate(table.to_pylist(), 1)
