"""The API log event reader (events.py): the same rows and problems as the batch loader (DuckDB),
the time and number rules, and one ``facts_of`` that carries everything a line gives."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import pytest

from geowarden.errors import ConfigError
from geowarden.events import (
    LOG_FIELDS,
    Event,
    EventReader,
    RTTWindows,
    _to_double,
    event_facts,
    facts_of,
    iso_ms,
    json_number_text,
)
from geowarden.intel.snapshot import Snapshot
from geowarden.latency.pops import POPS
from geowarden.model import RTTSample

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
BASE = {"ts": T0, "account_id": "a1", "api_key_id": "k1", "ip": "8.8.8.8"}


def row(rid: str, **kw: Any) -> bytes:
    return json.dumps({**BASE, "request_id": rid, **kw}).encode()


def raw(rid: str, body: str) -> bytes:
    """A hand-written line: ``body`` goes after the common fields (it starts with a comma or is empty)."""
    return (
        f'{{"ts": {T0}, "request_id": "{rid}", "account_id": "a1", "api_key_id": "k1", "ip": "8.8.8.8"' + body + "}"
    ).encode()


# One line each (joined by the separators below): good rows, every kind of bad row, the edges.
LINES: list[bytes] = [
    row("good"),
    b"not json",
    b"[1, 2]",
    b'"a string"',
    b"42",
    b"{not json",
    row("extra", extra_column={"kept": "and ignored"}, phone="+4930123", card_bin="411111"),
    # times
    row("iso-z", ts="2026-01-02T03:04:05.678Z"),
    row("iso-lower", ts="2026-01-02t03:04:05,6789z"),
    row("iso-space", ts="2026-01-02 03:04"),
    row("iso-hour", ts="2026-01-02T03"),
    row("iso-date", ts="2026-01-02"),
    row("iso-offset", ts="2026-01-02T03:04:05+05:30"),
    row("iso-offset2", ts="2026-01-02T03:04:05 -0800"),
    row("iso-offset3", ts="2026-01-02T03:04:05+01"),
    row("iso-blanks", ts="  2026-01-02T03:04:05Z\t"),
    row("leap", ts="2024-02-29"),
    row("not-leap", ts="2100-02-29"),
    row("feb30", ts="2026-02-30"),
    row("h24", ts="2026-01-01T24:00:00Z"),
    row("sec60", ts="2026-01-01T23:59:60Z"),
    row("tz24", ts="2026-01-01T10:00:00+24:00"),
    row("date-offset", ts="2026-01-02Z"),
    row("yesterday", ts="yesterday"),
    row("ts-blank", ts="   "),
    row("ts-empty", ts=""),
    row("ts-bool", ts=True),
    row("ts-object", ts={"at": 1}),
    row("ts-array", ts=[T0]),
    row("ts-null", ts=None),
    row("ts-seconds", ts=1_767_225_600),
    row("y1999", ts="1999-12-31T23:59:59.999Z"),
    row("y2000", ts="2000-01-01T00:00:00Z"),
    row("y2099", ts="2099-12-31T23:59:59.999Z"),
    row("y2100", ts="2100-01-01T00:00:00Z"),
    row("y2000-offset", ts="2000-01-01T00:30:00+01:00"),
    row("ts-float", ts=T0 + 0.75),
    row("ts-negative", ts=-5),
    row("ts-huge", ts=2**60),
    row("ts-numeric-string", ts="1767225600000"),
    # identifiers
    row("", account_id="a"),
    row("ids-missing", account_id=None, ip=""),
    row("id-number", account_id=123, api_key_id=12.5),
    row("id-real", account_id=1e2, api_key_id=1e21),
    row("id-spaces", account_id="  a2 ", api_key_id="\tk2"),
    row("id-blank", account_id="   "),
    row("id-bool", account_id=False),
    row("id-object", api_key_id={"id": 1}),
    row("ip-bad", ip="999.1.1.1"),
    row("ip-prefix", ip="1.2.3.4/24"),
    row("ip-blank", ip=" "),
    row("ip-v6", ip="2001:4860:4860::8888"),
    row("ip-spaced", ip=" 8.8.4.4 "),
    # texts
    row("ua-array", user_agent=["x"]),
    row("text-blanks", user_agent=" Mozilla/5.0 ", client_tz="\tUTC ", model=" "),
    row("ua-number", user_agent=7, client_tz="Europe/Berlin", accept_language="de-DE"),
    row("text-escapes", user_agent='caf\u00e9 "quoted" \\ back', pop="fra"),
    # numbers
    row("numbers", rtt_ms=12.5, input_tokens=12, output_tokens=3.9, status=200),
    row("numeric-strings", rtt_ms=" 12.5 ", input_tokens="12", output_tokens="-3.9", status="2_00"),
    row("numeric-exp", rtt_ms="1e1", input_tokens="+7", output_tokens=".5", status="5."),
    row("numeric-blank", input_tokens="", rtt_ms="  "),
    row("numeric-special", rtt_ms="NaN"),
    row("numeric-inf", input_tokens="inf"),
    row("numeric-word", input_tokens="many"),
    row("numeric-bool", rtt_ms=True),
    row("numeric-object", status={"code": 200}),
    row("numeric-huge", status=1e300),
    row("numeric-2to53", input_tokens=2**53),
    row("numeric-below", input_tokens=2**53 - 1),
    row("numeric-hex", input_tokens="0x10"),
    row("numeric-plusminus", input_tokens="+-4"),
    row("numeric-negative-truncates", output_tokens=-2.7),
    row("numeric-null", rtt_ms=None, status=None),
    row("problem-order", ts="yesterday", user_agent=["x"], status="x"),
    row("problem-order2", user_agent=True, status="x"),
    # JSON dialect
    raw("dup", ', "account_id": "second"'),
    raw("trailing-comma", ', "model": "m",'),
    raw("nan-literal", ', "rtt_ms": NaN'),
    raw("surrogate", ', "model": "\\ud800"'),
    raw("surrogate-pair", ', "model": "\\ud83d\\ude00"'),
    raw("nested-trailing", ', "x": [1, 2,]'),
    b'{"request_id": "double-comma", "a": 1,,}',
    b"\x0c" + row("formfeed"),
    "\ufeff".encode() + row("bom"),
    b"  \t" + row("leading-blanks"),
    raw("latin1", ', "user_agent": "caf\xe9"'),
    b'{"ts": ' + str(T0).encode() + b', "request_id": "bad-bytes", "ip": "8.8.8.8", "\xff\xfe": 1}',
]
SEPARATORS = [b"\n", b"\r\n", b"\r", b"\n\n", b"\n  \t\n", b"\r\n\r\n"]  # blank lines in between


def tricky_bytes() -> bytes:
    out = b""
    for i, line in enumerate(LINES):
        out += line + SEPARATORS[i % len(SEPARATORS)]
    return out


@pytest.fixture(scope="module")
def tricky(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("events") / "tricky.jsonl"
    path.write_bytes(tricky_bytes())
    return path


COMPARED = ("ts_ms", "request_id", "account_id", "api_key_id", "ip", "user_agent", "accept_language", "client_tz",
            "pop", "model", "rtt_ms", "input_tokens", "output_tokens", "status")  # fmt: skip


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=0, abs_tol=0)
    return bool(a == b)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_the_reader_and_the_loader_agree(tiny_snapshot: Snapshot, tricky: Path, tmp_path: Path, gz: bool) -> None:
    """One tricky JSON Lines file through both readers: the same rows accepted with the same
    values, the same (line, reason) problems, the same counts."""
    pytest.importorskip("duckdb")
    from geowarden.analytics.backends import DuckDBEngine
    from geowarden.analytics.load import load
    from geowarden.policy import default_restricted

    path = tricky
    if gz:
        path = tmp_path / "tricky.jsonl.gz"
        path.write_bytes(gzip.compress(tricky.read_bytes()))
    reader = EventReader([path])
    ours = list(reader)
    engine = DuckDBEngine()
    try:
        loaded = load(engine, [path], tiny_snapshot, default_restricted())
        theirs = sorted(loaded.events.to_pyarrow().to_pylist(), key=lambda e: e["request_id"])
    finally:
        engine.close()
    assert [(p.line, p.reason) for p in reader.problems] == [(p.line, p.reason) for p in loaded.problems.listed]
    assert sorted(e.request_id for e in ours) == [e["request_id"] for e in theirs]
    assert (reader.read, reader.skipped) == (loaded.problems.rows_read, loaded.problems.skipped)
    by_id = {e.request_id: e for e in ours}
    for e in theirs:
        mine = by_id[e["request_id"]]
        for name in COMPARED:
            assert _same(getattr(mine, name), e[name]), (e["request_id"], name, getattr(mine, name), e[name])


def test_the_tricky_file_covers_what_it_should(tricky: Path) -> None:
    reader = EventReader([tricky])
    ids = {e.request_id: e for e in reader}
    reasons = {p.reason for p in reader.problems}
    assert {"not JSON", "not a JSON object", "missing request_id", "missing account_id, ip", "ts is not a time",
            "ts is neither ISO 8601 nor epoch milliseconds", "ts is out of range (2000-2099 expected)",
            "account_id is not a string", "api_key_id is not a string", "user_agent is not a string",
            "input_tokens is not a number", "rtt_ms is not a number", "status is not a number",
            "ip is not an IP address"} <= reasons  # fmt: skip
    assert ids["id-number"].account_id == "123" and ids["id-number"].api_key_id == "12.5"
    assert (ids["id-real"].account_id, ids["id-real"].api_key_id) == ("100.0", "1e21")
    assert (ids["id-spaces"].account_id, ids["id-spaces"].api_key_id) == ("a2", "\tk2")
    assert ids["ip-spaced"].ip == "8.8.4.4"
    assert ids["dup"].account_id == "a1"  # the first of duplicated keys
    assert ids["extra"].extra == {"extra_column": {"kept": "and ignored"}, "phone": "+4930123", "card_bin": "411111"}
    n = ids["numeric-strings"]
    assert (n.rtt_ms, n.input_tokens, n.output_tokens, n.status) == (12.5, 12, -3, 200)
    assert ids["numeric-blank"].input_tokens is None and ids["numeric-blank"].rtt_ms is None
    assert ids["numeric-negative-truncates"].output_tokens == -2
    assert ids["iso-offset"].ts_ms == iso_ms("2026-01-01T21:34:05Z")
    assert ids["ts-float"].ts_ms == T0 and ids["good"].ts == T0 / 1000
    by_reason = {p.line: p.reason for p in reader.problems}
    line_of = {rid: e.line for rid, e in ids.items()}
    assert line_of["good"] == 1 and 2 in by_reason  # line numbers count blank lines


ISO_CASES = [
    ("2026-01-01", T0),
    ("2026-01-01T05", T0 + 5 * 3_600_000),
    ("2026-01-01 05:06+01", T0 + 4 * 3_600_000 + 6 * 60_000),
    ("2026-01-01T00:00:00.1239Z", T0 + 123),
    ("2025-12-31T23:00:00-01:00", T0),
    ("2025-12-31T19:00:00 -0500", T0),
    ("2024-02-29", 1_709_164_800_000),
    ("2023-02-29", None),
    ("2026-13-01", None),
    ("2026-01-01T00:60", None),
    ("2026-01-01T", None),
    ("2026-1-01", None),
    ("2026-01-01T00:00:00+1", None),
    ("2026-01-01T00:00:00.Z", None),
    ("\uff12\uff10\uff12\uff16-01-01", None),  # full-width digits
]


@pytest.mark.parametrize(("text", "ms"), ISO_CASES)
def test_iso_times(text: str, ms: int | None) -> None:
    assert iso_ms(text) == ms


NUMBER_TEXTS = ["1_000", "+5", ".5", "5.", "1e5", "0x10", "nan", "-Inf", "infinity", "1,5", "\uff11\uff12", "1e",
                "--1", "+-1", "-+1", "1__0", "_1", "1_", "1.5_5", "1e1_0", "1.e5", ".e5", "00012", "+.5e+2",
                "infinit", ""]  # fmt: skip


def test_numeric_strings_cast_as_the_backend_casts_them() -> None:
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    for text in NUMBER_TEXTS:
        (want,) = con.execute("SELECT TRY_CAST(? AS DOUBLE)", [text]).fetchone()
        got = _to_double(text)
        assert (got is None) == (want is None), text
        if got is not None and not math.isnan(want):
            assert got == want, text


REALS = [1e15, 1e16, 1.5e20, 1e20, 1e21, 1e-5, 1e-6, 1e-7, 4.5e-7, 0.5, -2.5e-3, 100.0, 1234567.0, 123.456,
         1.7976931348623157e308, 5e-324, 12345678901234567.0, -0.0, 0.0]  # fmt: skip


def test_json_reals_are_written_as_the_backend_writes_them() -> None:
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    for x in REALS:
        (want,) = con.execute(
            """SELECT CAST(json_transform(?, '{"a":"JSON"}').a AS VARCHAR)""", [f'{{"a":{x!r}}}']
        ).fetchone()
        assert json_number_text(x) == want, x


def test_the_field_table_is_the_design_contract() -> None:
    assert [f.name for f in LOG_FIELDS if f.required] == ["ts", "request_id", "account_id", "api_key_id", "ip"]
    assert {f.name for f in LOG_FIELDS} == {
        "ts", "request_id", "account_id", "api_key_id", "ip", "user_agent", "accept_language", "client_tz", "pop",
        "rtt_ms", "model", "input_tokens", "output_tokens", "prompt_fingerprint", "status",
    }  # fmt: skip


def test_parquet_is_read_with_the_same_rules(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from datetime import UTC, datetime

    rows = [
        {**BASE, "ts": datetime(2026, 1, 1, tzinfo=UTC), "request_id": "p1", "status": 200, "input_tokens": "7"},
        {**BASE, "ts": datetime(1999, 1, 1, tzinfo=UTC), "request_id": "p2", "status": 200, "input_tokens": None},
        {**BASE, "ts": datetime(2026, 1, 1, tzinfo=UTC), "request_id": "p3", "status": None, "input_tokens": "x"},
    ]
    path = tmp_path / "log.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    reader = EventReader([path])
    got = list(reader)
    assert [(e.request_id, e.ts_ms, e.status, e.input_tokens) for e in got] == [("p1", T0, 200, 7)]
    assert [(p.line, p.reason) for p in reader.problems] == [
        (2, "ts is out of range (2000-2099 expected)"),
        (3, "input_tokens is not a number"),
    ]


def test_a_missing_log_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such log file"):
        EventReader([tmp_path / "nope.jsonl"])


def event(**kw: Any) -> Event:
    base: dict[str, Any] = {"line": 1, "ts_ms": T0, "request_id": "r", "account_id": "a", "api_key_id": "k",
                            "ip": "8.8.8.8"}  # fmt: skip
    return Event(**{**base, **kw})


def test_facts_of_carries_every_fact_of_the_line() -> None:
    ev = event(
        accept_language="de-DE", client_tz="Europe/Berlin", user_agent="sdk/1", pop="fra", rtt_ms=0.0,
        input_tokens=42, extra={"phone": "+4930123", "card_bin": 411111, "billing_country": "DE",
                                "email": "a@example.com", "unrelated": 1},
    )  # fmt: skip
    f = facts_of(ev)
    fra = POPS["fra"]
    assert (f.ip, f.timestamp, f.account_id, f.api_key_id) == ("8.8.8.8", T0 / 1000, "a", "k")
    assert (f.accept_language, f.timezone, f.user_agent, f.input_tokens) == ("de-DE", "Europe/Berlin", "sdk/1", 42)
    assert (f.phone, f.card_bin, f.billing_country, f.email) == ("+4930123", "411111", "DE", "a@example.com")
    assert f.rtt == (RTTSample(lat=fra.lat, lon=fra.lon, ms=0.1),)  # at least 0.1 ms
    assert (f.rtt_tcp_ms, f.rtt_app_ms) == ((), ())
    assert facts_of(event(pop="zzz", rtt_ms=5.0)).rtt == ()


def test_rtt_windows_per_account_and_address() -> None:
    windows = RTTWindows(size=2)
    a = [event(rtt_ms=float(i), extra={"rtt_app_ms": 10.0 + i}) for i in range(3)]
    other = event(ip="8.8.4.4", rtt_ms=1.0, extra={"rtt_app_ms": 2})
    no_app = event(rtt_ms=9.0)
    assert facts_of(a[0], windows).rtt_app_ms == (10.0,)
    assert facts_of(other, windows).rtt_tcp_ms == (1.0,)
    assert facts_of(no_app, windows).rtt_tcp_ms == ()  # no application RTT: no window
    f = facts_of(a[1], windows)
    f = facts_of(a[2], windows)
    assert (f.rtt_tcp_ms, f.rtt_app_ms) == ((1.0, 2.0), (11.0, 12.0))
    streamed = [f for _, f in event_facts([*a, other], window=2)]
    assert streamed[2].rtt_tcp_ms == (1.0, 2.0) and streamed[3].rtt_tcp_ms == (1.0,)


def test_the_simulator_writes_the_contract_and_the_extras() -> None:
    from geowarden.events import APP_RTT, CREATED, EXTRA_TEXT, PAYMENT_ACCOUNTS
    from geowarden.simulate.scenario import COLUMNS

    assert {f.name for f in LOG_FIELDS} | {APP_RTT, CREATED, PAYMENT_ACCOUNTS, *EXTRA_TEXT} == set(COLUMNS)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (1_767_225_600_000, 1_767_225_600.0),  # epoch milliseconds, as the ts column
        ("2026-01-01T00:00:00Z", 1_767_225_600.0),
        ("2026-01-01", 1_767_225_600.0),
        ("yesterday", None),  # unreadable: the account's age is unknown
        (True, None),
        (float("nan"), None),
        (None, None),
    ],
)
def test_account_created_column(value: object, seconds: float | None) -> None:
    f = facts_of(event(extra={"account_created": value, "payment_fingerprint": "9f86d081884c7d65"}))
    assert f.account_created == seconds
    assert f.payment_fingerprint == "9f86d081884c7d65"
    assert "9f86d081884c7d65" not in repr(f)


@pytest.mark.parametrize(
    ("value", "count"),
    [(9, 9), ("12", 12), (3.0, 3), (2.5, None), (-1, None), (True, None), ("many", None), (float("inf"), None)],
)
def test_payment_accounts_column(value: object, count: int | None) -> None:
    assert facts_of(event(extra={"payment_accounts": value})).payment_accounts == count
