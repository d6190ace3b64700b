"""API log events (DESIGN.md "API log events"): the field table, the reader, and the facts of an event.

One event per request, read from JSON Lines (``.jsonl``, ``.ndjson``, ``.json``, optionally
``.gz``) or Parquet. ``LOG_FIELDS`` is the contract; the batch loader (``analytics/load.py``)
validates the same fields with the same rules inside its backend, and this reader applies those
rules row by row in Python, so both accept the same rows and report the same problems:

- a line is split on ``\\n``, ``\\r\\n`` or a lone ``\\r``; bytes that are not UTF-8 are replaced;
  a line of only blanks (space, tab, CR, LF) is not a row;
- the first problem of a row, in this order: ``not JSON``, ``not a JSON object``, ``missing ts,
  ip`` (absent, null or empty required fields), ``ts is not a time``, ``ts is neither ISO 8601
  nor epoch milliseconds``, ``ts is out of range (2000-2099 expected)``, ``<field> is not a
  string``, ``<field> is not a number`` (by field, in table order), ``ip is not an IP address``;
- ``ts`` is epoch milliseconds (a number, floored) or ISO 8601 text (``2026-01-02``,
  ``2026-01-02T03[:04[:05[.678]]]`` with ``T``, ``t`` or a space, then ``Z``, ``+HH``, ``+HHMM``
  or ``+HH:MM``; no offset means UTC; beyond milliseconds truncated);
- identifiers and texts may be strings or numbers (a number is kept as the JSON text of its
  value); an identifier that starts or ends with a space is trimmed;
- numeric fields may be numbers or numeric strings; a value that is not finite or not below
  2**53 is not a number; integers truncate toward zero; an empty string is an absent value;
- a duplicated key keeps its first value; unknown extra columns are kept in ``Event.extra``.

A malformed row is reported (``Problem``: file, line, reason) and skipped; it never stops the
run and is always counted (``EventReader.skipped``).

``facts_of`` turns an event into ``Facts`` with everything the line gives (the DESIGN columns, the
edge RTT as a landmark measurement from its pop, the extra columns ``phone``, ``card_bin``,
``billing_country``, ``email``), and, given an ``RTTWindows``, the recent edge and application RTTs
of the same account and address (the tunnel gap). ``event_facts`` does that over a stream of
events with one window per stream: ``policy backtest`` and ``geowarden eval`` both judge these.

This module is one concept, the API-log event contract, and stays one module: the field table,
the row rules above, the file reader that applies them and the facts an event gives are the
contract's parts, read together whenever the contract changes (and kept in step with
``analytics/load.py``); split, each part would only be half of a rule.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal

from geowarden.errors import ConfigError, InputError
from geowarden.intel import addr
from geowarden.latency.pops import pop_location
from geowarden.model import Facts, RTTSample

Kind = Literal["id", "text", "ts", "float", "int"]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: Kind
    required: bool = False

    @property
    def numeric(self) -> bool:
        return self.kind in ("ts", "float", "int")


#: The API log contract, in the order problems are looked for.
LOG_FIELDS: tuple[Field, ...] = (
    Field("ts", "ts", True),
    Field("request_id", "id", True),
    Field("account_id", "id", True),
    Field("api_key_id", "id", True),
    Field("ip", "id", True),
    *(Field(n, "text") for n in ("user_agent", "accept_language", "client_tz", "pop", "model", "prompt_fingerprint")),
    Field("rtt_ms", "float"),
    *(Field(n, "int") for n in ("input_tokens", "output_tokens", "status")),
)
LOG_FIELD_NAMES = frozenset(f.name for f in LOG_FIELDS)

TS_MIN_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
TS_MAX_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
EXACT = 2**53  # beyond this a float64 no longer holds every integer
ISO_PATTERN = (
    "^([0-9]{4})-([0-9]{2})-([0-9]{2})"
    "(?:[Tt ]([0-9]{2})(?::([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]+))?)?)?"
    " ?(Z|z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?$"
)
BLANKS = " \t\n\r\x0b\x0c"  # what a value is trimmed of
LINE_BLANKS = " \t\r\n"  # a line of only these is not a row
MAX_PROBLEMS = 1000  # problems listed one by one (all are counted)

#: Extra columns (the simulator writes them) that ``facts_of`` carries into ``Facts``.
EXTRA_TEXT = ("phone", "card_bin", "billing_country", "email", "payment_fingerprint")
CREATED = "account_created"  # extra column: when the account was created (epoch ms or ISO 8601), group signal
PAYMENT_ACCOUNTS = "payment_accounts"  # extra column: accounts on the payment instrument (billing records)
APP_RTT = "rtt_app_ms"  # extra column: the application-level RTT of the request (tunnel gap)
RTT_WINDOW = 5  # edge and application RTTs kept per (account, address)


@dataclass(frozen=True, slots=True)
class Problem:
    """A malformed row: where it is and why it was skipped."""

    file: str
    line: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Event:
    line: int
    ts_ms: int  # epoch milliseconds
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

    @property
    def ts(self) -> float:
        """Epoch seconds."""
        return self.ts_ms / 1000.0


class EventReader:
    """Iterate the events of one or more log files; problems are collected, not raised."""

    def __init__(self, paths: Iterable[Path], *, max_problems: int = MAX_PROBLEMS) -> None:
        self.paths = [Path(p) for p in paths]
        for p in self.paths:
            if not p.is_file():
                raise ConfigError(f"{p}: no such log file")
        self.problems: list[Problem] = []
        self.skipped = 0
        self.read = 0
        self._max = max_problems

    def __iter__(self) -> Iterator[Event]:
        for path in self.paths:
            typed = path.name.lower().endswith(".parquet")
            rows = _parquet_rows(path) if typed else _json_rows(path)
            for line, row in rows:
                self.read += 1
                try:
                    yield parse_row(row, line, typed=typed)
                except InputError as exc:
                    self.skipped += 1
                    if len(self.problems) < self._max:
                        self.problems.append(Problem(str(path), line, exc.message))


# -- one row ---------------------------------------------------------------------------------

_ISO = re.compile(ISO_PATTERN)
# A numeric string as the backends cast it to a double: digits may be grouped by single
# underscores; "+-" is a minus; nan, inf and infinity in any case.
_NUMBER = re.compile(
    r"(\+?-?)(?:((?:[0-9]+(?:_[0-9]+)*)(?:\.(?:[0-9]+(?:_[0-9]+)*)?)?|\.[0-9]+(?:_[0-9]+)*)"
    r"(?:[eE][+-]?[0-9]+(?:_[0-9]+)*)?|(nan|inf|infinity))",
    re.IGNORECASE,
)
_TAGS_NOT_TEXT = ("bool", "object", "array")
_REQUIRED = tuple(f.name for f in LOG_FIELDS if f.required)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Bad:
    """A line that could not be decoded; ``parse_row`` reports it."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def parse_row(row: Any, line: int, *, typed: bool = False) -> Event:
    """One decoded row -> an ``Event``, or ``InputError`` with the row's first problem.

    ``typed``: the row comes from a typed source (Parquet), whose numbers keep their own text."""
    if isinstance(row, _Bad):
        raise InputError(row.reason)
    if not isinstance(row, dict):
        raise InputError("not a JSON object")
    get = row.get
    missing = [name for name in _REQUIRED if (v := get(name)) is None or v == ""]
    if missing:
        raise InputError(f"missing {', '.join(missing)}")
    kw: dict[str, Any] = {"line": line}
    for f in LOG_FIELDS:
        value = get(f.name)
        if value is None:
            continue
        cls = type(value)
        if f.kind == "ts":
            if cls is int or cls is float:  # the common cases first: no classification
                kw["ts_ms"] = _time(f.name, "number", None, value)
            elif cls is str:
                kw["ts_ms"] = _time(f.name, "string", value, None)
            else:
                kw["ts_ms"] = _time(f.name, *_raw(value, f, typed))
        elif f.kind in ("id", "text"):
            if cls is str:
                kw[f.name] = (
                    value.strip(BLANKS) if f.kind == "id" and (value[:1] == " " or value[-1:] == " ") else value
                )
                continue
            tag, text, _ = _raw(value, f, typed)
            if tag in _TAGS_NOT_TEXT:
                raise InputError(f"{f.name} is not a string")
            kw[f.name] = clean_id(text) if f.kind == "id" and text is not None else text
        elif (number := _number(f, value, typed)) is not None:
            kw[f.name] = number
    try:
        addr.parse(kw["ip"])
    except InputError:
        raise InputError("ip is not an IP address") from None
    kw["extra"] = {k: v for k, v in row.items() if k not in LOG_FIELD_NAMES}
    return Event(**kw)


def _number(f: Field, value: Any, typed: bool) -> float | int | None:
    """The value of a numeric field (None: absent), or ``InputError``."""
    number: float | None
    if type(value) is int or type(value) is float:
        number = value if -EXACT < value < EXACT else None
    else:
        tag, text, number = _raw(value, f, typed)
        if tag == "string" and text is not None:
            stripped = text.strip(BLANKS)
            if not stripped:
                return None  # an empty string: absent
            number = _to_double(stripped)
        elif tag != "number":
            number = None
    if number is None or not math.isfinite(number) or abs(number) >= EXACT:
        raise InputError(f"{f.name} is not a number")
    return float(number) if f.kind == "float" else int(number)


def clean_id(text: str) -> str:
    """An identifier without surrounding blanks (trimmed only when it starts or ends with a space)."""
    return text.strip(BLANKS) if text.startswith(" ") or text.endswith(" ") else text


def _raw(value: Any, f: Field, typed: bool) -> tuple[str | None, str | None, float | None]:
    """(tag, text, number) of a value, as the backends' raw tables hold it: the tag is
    ``string``, ``number``, ``bool``, ``object``, ``array`` or None (absent or null)."""
    if value is None:
        return None, None, None
    if isinstance(value, str):
        return "string", value, None
    if isinstance(value, bool):
        return "bool", "true" if value else "false", None
    if isinstance(value, int):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf if value > 0 else -math.inf
        return "number", str(value), number
    if isinstance(value, float):
        return "number", str(value) if typed else json_number_text(value), value
    if isinstance(value, Decimal):
        return "number", str(value), float(value)
    if isinstance(value, dict):
        return "object", json.dumps(value), None
    if isinstance(value, list | tuple):
        return "array", json.dumps(value), None
    if isinstance(value, datetime | date) and f.kind == "ts":  # a Parquet timestamp or date column
        when = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return "number", None, float((when - _EPOCH) // timedelta(milliseconds=1))
    return "string", str(value), None


def _time(name: str, tag: str | None, text: str | None, number: float | None) -> int:
    """Epoch milliseconds of a time value, or ``InputError`` with the backends' reason."""
    if tag in _TAGS_NOT_TEXT:
        raise InputError(f"{name} is not a time")
    ms: int | None = None
    if tag == "number" and number is not None and abs(number) < EXACT:
        ms = math.floor(number)
    elif tag == "string" and text is not None:
        ms = iso_ms(text.strip(BLANKS))
    if ms is None:
        raise InputError(f"{name} is neither ISO 8601 nor epoch milliseconds")
    if ms < TS_MIN_MS or ms >= TS_MAX_MS:
        raise InputError(f"{name} is out of range (2000-2099 expected)")
    return ms


def iso_ms(text: str) -> int | None:
    """Epoch milliseconds of ISO 8601 text in the accepted forms, or None: the backends' integer
    arithmetic (H. Hinnant's ``days_from_civil``), fractions beyond milliseconds truncated."""
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    y, mo, d = int(m[1]), int(m[2]), int(m[3])
    hh = int(m[4]) if m[4] else 0
    mi = int(m[5]) if m[5] else 0
    ss = int(m[6]) if m[6] else 0
    fms = int((m[7] + "00")[:3]) if m[7] else 0
    tz = (m[8] or "").replace(":", "")
    tzh = int(tz[1:3]) if len(tz) >= 3 else 0
    tzm = int(tz[3:5]) if len(tz) >= 5 else 0
    leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
    dim = (29 if leap else 28) if mo == 2 else 30 if mo in (4, 6, 9, 11) else 31
    if not (1 <= mo <= 12 and 1 <= d <= dim and hh < 24 and mi < 60 and ss < 60 and tzh < 24 and tzm < 60):
        return None
    y2 = y - (1 if mo <= 2 else 0)
    era = y2 // 400
    yoe = y2 - era * 400
    doe = yoe * 365 + yoe // 4 - yoe // 100 + (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    days = era * 146_097 + doe - 719_468
    sign = -1 if tz.startswith("-") else 1
    return days * 86_400_000 + hh * 3_600_000 + mi * 60_000 + ss * 1000 + fms - sign * (tzh * 60 + tzm) * 60_000


def _to_double(text: str) -> float | None:
    """A numeric string as the backends cast it (``TRY_CAST(... AS DOUBLE)``), or None."""
    m = _NUMBER.fullmatch(text)
    if m is None:
        return None
    sign = "-" if "-" in m[1] else ""
    body = text[len(m[1]) :].replace("_", "")
    return float(sign + body)


def json_number_text(value: float) -> str:
    """A JSON real as the backends write it back: the shortest digits that round-trip, in fixed
    notation (``100.0``, ``0.000001``) for exponents from -6 to 20, else ``1e21``, ``4.5e-7``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign, digits_t, exp = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digits_t))
    k, n = len(digits), len(digits) + int(exp)  # value = 0.<digits> * 10**n (exp is an int: finite)
    out = "-" if sign else ""
    if k <= n <= 21:
        return f"{out}{digits}{'0' * (n - k)}.0"
    if 0 < n <= 21:
        return f"{out}{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return f"{out}0.{'0' * -n}{digits}"
    mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{out}{mantissa}e{n - 1}"


# -- files -----------------------------------------------------------------------------------


def _open_text(path: Path) -> IO[str]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace")
    return path.open(encoding="utf-8-sig", errors="replace")  # utf-8-sig: a byte-order mark is dropped


def _json_rows(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        with _open_text(path) as fh:
            for n, text in enumerate(fh, 1):
                if not text.strip(LINE_BLANKS):
                    continue
                yield n, decode_line(text)
    except (OSError, EOFError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) < len(pairs):  # a duplicated key: its first value counts
        out = {}
        for k, v in pairs:
            out.setdefault(k, v)
    return out


_DECODER = json.JSONDecoder(object_pairs_hook=_first_wins)


_SURROGATE = re.compile("[\ud800-\udfff]")
# Outside strings: a trailing comma before } or ], or a bare nan / inf / infinity.
_LENIENT = re.compile(r'("(?:[^"\\]|\\.)*")|,(?=[ \t\r\n]*[}\]])|(-?)(nan|infinity|inf)(?![A-Za-z0-9_])', re.IGNORECASE)


def decode_line(text: str) -> Any:
    """A JSON value as the backends' JSON parser reads it (trailing commas, NaN and Infinity
    accepted; lone surrogates rejected; the first of duplicated keys kept), or a ``_Bad``."""
    try:
        row = _DECODER.decode(text)
    except (json.JSONDecodeError, RecursionError):
        try:
            row = _DECODER.decode(_LENIENT.sub(lambda m: _lenient(text, m), text))
        except (json.JSONDecodeError, RecursionError):
            return _Bad("not JSON")
    if "\\u" in text and _has_surrogate(row):
        return _Bad("not JSON")
    return row


def _lenient(text: str, m: re.Match[str]) -> str:
    if m[1] is not None:
        return m[1]
    if m[3] is not None:
        word = m[3].lower()
        return "NaN" if word == "nan" else ("-Infinity" if m[2] else "Infinity")
    before = text[: m.start()].rstrip(LINE_BLANKS)[-1:]
    return m[0] if before in ("{", "[", ",", ":", "") else ""


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def _parquet_rows(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        import pyarrow.parquet as pq  # noqa: PLC0415 - optional dependency
    except ImportError:
        raise ConfigError(f"{path}: reading Parquet needs pyarrow (pip install 'geowarden[parquet]')") from None
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    yield from enumerate(table.to_pylist(), 1)


# -- facts -----------------------------------------------------------------------------------


class RTTWindows:
    """The last ``size`` edge (TCP) and application RTTs of each (account, address), as an edge
    that keeps a short window would pass them (``Facts.rtt_tcp_ms`` / ``rtt_app_ms``)."""

    def __init__(self, size: int = RTT_WINDOW) -> None:
        self.size = size
        self._by: dict[tuple[str, str], tuple[deque[float], deque[float]]] = {}

    def observe(self, event: Event) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Add the event's RTTs (when it has both an edge and an application RTT) and return the
        window of its account and address; ``((), ())`` for an event without both."""
        app_ms = event.extra.get(APP_RTT)
        if event.rtt_ms is None or isinstance(app_ms, bool) or not isinstance(app_ms, int | float):
            return (), ()
        tcp, app = self._by.setdefault((event.account_id, event.ip), (deque(maxlen=self.size), deque(maxlen=self.size)))
        tcp.append(float(event.rtt_ms))
        app.append(float(app_ms))
        return tuple(tcp), tuple(app)


def facts_of(event: Event, windows: RTTWindows | None = None) -> Facts:
    """Every fact the line gives: the DESIGN columns, the edge RTT as one landmark measurement
    from its pop (``latency.pops``), the extra columns ``EXTRA_TEXT``, and with ``windows`` the
    recent RTTs of the same account and address (updated with this event's)."""
    rtt: tuple[RTTSample, ...] = ()
    if event.rtt_ms is not None and event.pop is not None and (loc := pop_location(event.pop)) is not None:
        rtt = (RTTSample(lat=loc[0], lon=loc[1], ms=max(event.rtt_ms, 0.1)),)
    text = {k: str(v) for k in EXTRA_TEXT if (v := event.extra.get(k)) is not None}
    tcp_ms, app_ms = windows.observe(event) if windows is not None else ((), ())
    return Facts(
        ip=event.ip,
        timestamp=event.ts,
        account_id=event.account_id,
        api_key_id=event.api_key_id,
        accept_language=event.accept_language,
        timezone=event.client_tz,
        user_agent=event.user_agent,
        phone=text.get("phone"),
        card_bin=text.get("card_bin"),
        billing_country=text.get("billing_country"),
        email=text.get("email"),
        rtt=rtt,
        input_tokens=event.input_tokens,
        rtt_tcp_ms=tcp_ms,
        rtt_app_ms=app_ms,
        payment_fingerprint=text.get("payment_fingerprint"),
        account_created=created_s(event.extra.get(CREATED)),
        payment_accounts=_count(event.extra.get(PAYMENT_ACCOUNTS)),
    )


def _count(value: Any) -> int | None:
    """A non-negative whole number from an extra column (JSON number or numeric text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = _to_double(value.strip())
    if isinstance(value, int | float) and math.isfinite(value) and 0 <= value < 2**31 and value == int(value):
        return int(value)
    return None


def created_s(value: Any) -> float | None:
    """An ``account_created`` column in epoch seconds: epoch milliseconds as the ``ts`` column
    takes them, or ISO 8601 text; None when absent or unreadable (the account's age is then
    unknown, which the group signal treats as not new)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, datetime):  # a Parquet timestamp column (naive: UTC)
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, int | float):
        return float(value) / 1000.0 if math.isfinite(value) else None
    if isinstance(value, str):
        ms = iso_ms(value.strip())
        return ms / 1000.0 if ms is not None else None
    return None


def event_facts(events: Iterable[Event], *, window: int = RTT_WINDOW) -> Iterator[tuple[Event, Facts]]:
    """Each event with its facts, in the order given, the RTT windows kept over the whole stream."""
    windows = RTTWindows(window)
    for event in events:
        yield event, facts_of(event, windows)
