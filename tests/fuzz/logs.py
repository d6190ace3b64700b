"""Generated API logs (DESIGN.md "API log events"): good rows, rows known to be malformed, and rows
whose fate only the contract decides (negative counts, deep nesting), on damaged lines."""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import strategies as st

from fuzz.fuzzkit import LONG_LINE, junk_bytes, junk_text

TS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
IPS = ["8.8.8.8", "1.2.4.8", "5.1.1.1", "2400:3200::1", "6.6.6.6"]
LINE_BLANKS = " \t\r\n"


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a log: ``good`` True (must become an event), False (must be reported), or None
    (either, as the contract says; only the totals are checked)."""

    raw: bytes
    good: bool | None

    @property
    def is_row(self) -> bool:
        return bool(self.raw.decode("utf-8", "replace").strip(LINE_BLANKS))


def _dumps(row: dict[str, object]) -> bytes:
    return json.dumps(row, ensure_ascii=False, allow_nan=True).encode()


@st.composite
def good_row(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(0, 10**6))
    ts: object = draw(
        st.sampled_from([TS + n, "2026-01-02T03:04:05Z", "2026-01-02 03:04:05.678+02:00", "2026-01-02", TS + 0.5])
    )
    row: dict[str, object] = {
        "ts": ts,
        "request_id": f"r{n}",
        "account_id": draw(st.sampled_from(["a1", "a2", 17, " a3 "])),
        "api_key_id": draw(st.sampled_from(["k1", "k2"])),
        "ip": draw(st.sampled_from(IPS)),
    }
    optional = {
        "user_agent": st.text(max_size=20),
        "accept_language": st.sampled_from(["zh-CN,zh;q=0.9", "en-US", ""]),
        "client_tz": st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "Not/AZone"]),
        "rtt_ms": st.one_of(st.floats(0, 1e4), st.just("12.5"), st.just("")),
        "input_tokens": st.integers(0, 10**9),
        "status": st.sampled_from([200, 429, "500"]),
        "extra_column": st.recursive(st.none() | st.integers() | st.text(max_size=5), st.lists, max_leaves=5),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            row[name] = draw(strategy)
    text = _dumps(row)
    if draw(st.booleans()):  # a duplicated key: the first value counts
        text = text[:-1] + b', "ts": "garbage", "ip": {"no": 1}}'
    return text


_BASE = {"ts": TS, "request_id": "r", "account_id": "a", "api_key_id": "k", "ip": "8.8.8.8"}


def _with(**kw: object) -> bytes:
    row = {k: v for k, v in {**_BASE, **kw}.items() if v is not _DROP}
    return _dumps(row)


_DROP = object()

#: Rows the contract refuses, each for one reason.
BAD_ROWS = [
    _with(ts=_DROP),
    _with(ip=""),
    _with(ip="1.2.\x003.4"),
    _with(ip="not an address"),
    _with(ts=-1),  # before 1970
    _with(ts=-86_400_000 * 365 * 100),
    _with(ts=253_402_300_800_000),  # the year 10000
    _with(ts="2101-01-01T00:00:00Z"),  # after 2099
    _with(ts="1969-12-31T23:59:59Z"),
    _with(ts="2026-02-30"),
    _with(ts=True),
    _with(ts={"$date": TS}),
    _with(ts=float("nan")),
    _with(rtt_ms=float("nan")),
    _with(rtt_ms=float("inf")),
    _with(input_tokens=2**63),
    _with(input_tokens="many"),
    _with(status=[200]),
    _with(user_agent={"a": 1}),
    _with(account_id=[1, 2]),
    b'{"ts": 1e309, "request_id": "r", "account_id": "a", "api_key_id": "k", "ip": "8.8.8.8"}',
    b'{"ts": 1767225600000, "request_id": "r", "account_id": "a", "api_key_id": "k", "rtt_ms": -1e309, '
    b'"ip": "8.8.8.8"}',
    b'{"ts": 1767225600000, "request_id": "r", "account_id": "a"',  # truncated
    b"[1, 2, 3]",
    b'"a string"',
    b"null",
    b"42",
]

#: Rows whose fate only the contract decides.
EITHER_ROWS = [
    _with(input_tokens=-5),  # a negative count
    _with(output_tokens=-1.5),
    _with(ts=TS + 10**12),  # about 2057: future but within range
    _with(extra=LONG_LINE),  # a 1 MB line
    b'{"ts": 1767225600000, "request_id": "r", "account_id": "a", "api_key_id": "k", "ip": "8.8.8.8", "deep": '
    + b"[" * 5000
    + b"]" * 5000
    + b"}",  # nested beyond any parser's depth limit
    b'{"ts": 1767225600000, "request_id": "r", "account_id": "a", "api_key_id": "k", "ip": "8.8.8.8",}',
    b'{"ts": NaN, "request_id": "r", "account_id": "a", "api_key_id": "k", "ip": "8.8.8.8"}',
    b'{"ts": 1767225600000, "request_id": "\\ud800", "account_id": "a", "api_key_id": "k", "ip": "8.8.8.8"}',
]


def _not_object(text: str) -> bool:
    return not text.strip(LINE_BLANKS + "\ufeff").startswith(("{", "["))


log_line = st.one_of(
    good_row().map(lambda b: LogLine(b, True)),
    st.sampled_from(BAD_ROWS).map(lambda b: LogLine(b, False)),
    st.sampled_from(EITHER_ROWS).map(lambda b: LogLine(b, None)),
    junk_text.filter(_not_object).map(lambda s: LogLine(s.encode("utf-8", "surrogatepass"), False)),
    junk_bytes.map(lambda b: LogLine(b, None)),
)
