"""The loader (analytics/load.py, lines.py, enrich.py): every malformed row is counted and reported
with its file, line and reason; good rows come out typed and enriched; JSON Lines (plain and
gzipped) and Parquet give the same events; the Python reader (geowarden.events) agrees."""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from analytics_world import T0, LogWriter, addr

from geowarden.analytics.backends import DuckDBEngine
from geowarden.analytics.lines import read_lines
from geowarden.analytics.load import Loaded, discover, load
from geowarden.errors import ConfigError
from geowarden.events import EventReader
from geowarden.intel.snapshot import Snapshot
from geowarden.policy import default_restricted

GOOD = {"ts": T0, "request_id": "r", "account_id": "a1", "api_key_id": "k1", "ip": "1.2.4.8"}


def run(snapshot: Snapshot, *paths: Path, accounts: Path | None = None) -> Loaded:
    engine = DuckDBEngine()
    return load(engine, list(paths), snapshot, default_restricted(), accounts=accounts)


def events(loaded: Loaded) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = loaded.events.order_by("request_id").to_pyarrow().to_pylist()
    return rows


def line(text: str | dict[str, Any]) -> str:
    return text if isinstance(text, str) else json.dumps(text)


# (line, reason or None): one file, one line each, in this order
ROWS: list[tuple[str | dict[str, Any], str | None]] = [
    (GOOD, None),
    ("not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('"a string"', "not a JSON object"),
    ({**GOOD, "ts": "yesterday"}, "ts is neither ISO 8601 nor epoch milliseconds"),
    ({**GOOD, "ts": "2026-02-30"}, "ts is neither ISO 8601 nor epoch milliseconds"),
    ({**GOOD, "ts": "2026-01-01T24:00:00Z"}, "ts is neither ISO 8601 nor epoch milliseconds"),
    ({**GOOD, "ts": True}, "ts is not a time"),
    ({**GOOD, "ts": {"at": 1}}, "ts is not a time"),
    ({**GOOD, "ts": 1_767_225_600}, "ts is out of range (2000-2099 expected)"),  # seconds, not ms
    ({**GOOD, "ts": None}, "missing ts"),
    ({k: v for k, v in GOOD.items() if k not in ("ip", "account_id")}, "missing account_id, ip"),
    ({**GOOD, "api_key_id": ""}, "missing api_key_id"),
    ({**GOOD, "ip": "999.1.1.1"}, "ip is not an IP address"),
    ({**GOOD, "ip": "1.2.3.4/24"}, "ip is not an IP address"),
    ({**GOOD, "account_id": {"id": 1}}, "account_id is not a string"),
    ({**GOOD, "user_agent": ["x"]}, "user_agent is not a string"),
    ({**GOOD, "input_tokens": "many"}, "input_tokens is not a number"),
    ({**GOOD, "rtt_ms": True}, "rtt_ms is not a number"),
    ({**GOOD, "status": 1e300}, "status is not a number"),
    ({**GOOD, "request_id": "r2", "extra_column": {"kept": "and ignored"}}, None),
    ({**GOOD, "request_id": "r3", "account_id": 123, "input_tokens": "12", "rtt_ms": 12.5}, None),
]


@pytest.fixture(scope="module")
def malformed(world_snapshot: Snapshot, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Loaded]:
    path = tmp_path_factory.mktemp("bad") / "bad.jsonl"
    text = "".join(line(r) + "\n" + ("\n" if i == 3 else "") for i, (r, _) in enumerate(ROWS))  # a blank line
    path.write_text(text, encoding="utf-8")
    return path, run(world_snapshot, path)


def test_every_malformed_row_is_reported_with_its_line(malformed: tuple[Path, Loaded]) -> None:
    path, loaded = malformed
    expected = []
    n = 0
    for i, (_, reason) in enumerate(ROWS):
        n += 1
        if reason is not None:
            expected.append((str(path), n, reason))
        if i == 3:
            n += 1  # the blank line after the fourth row
    got = [(p.file, p.line, p.reason) for p in loaded.problems.listed]
    assert got == expected
    p = loaded.problems
    assert p.skipped == len(expected)
    assert p.rows_read == len(ROWS)  # the blank line is not a row
    assert sum(p.by_reason.values()) == p.skipped
    assert p.by_file == {str(path): len(expected)}
    assert len(events(loaded)) == p.rows_read - p.skipped


def test_good_rows_are_typed(malformed: tuple[Path, Loaded]) -> None:
    by_id = {e["request_id"]: e for e in events(malformed[1])}
    r3 = by_id["r3"]
    assert r3["account_id"] == "123"  # a number where an id was expected: kept as text
    assert r3["input_tokens"] == 12 and r3["rtt_ms"] == 12.5
    r = by_id["r"]
    assert r["ts_ms"] == T0 and r["ts"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert (r["country"], r["asn"], r["org"], r["prefix"]) == ("CN", 4134, "Chinanet", "1.2.4.0/24")
    assert r["hosting"] is False and r["client_restricted"] is False


def test_the_python_reader_agrees(malformed: tuple[Path, Loaded]) -> None:
    """geowarden.events.EventReader reads the same file with the same rules: the same rows
    accepted with the same values, the same problems (tests/test_events.py has the tricky file)."""
    path, loaded = malformed
    reader = EventReader([path])
    theirs = {e.request_id: e for e in reader}
    ours = {e["request_id"]: e for e in events(loaded)}
    assert set(ours) == set(theirs)
    for rid, e in ours.items():
        assert e["ts_ms"] == theirs[rid].ts_ms
        assert e["account_id"] == theirs[rid].account_id
    assert [(p.line, p.reason) for p in reader.problems] == [(p.line, p.reason) for p in loaded.problems.listed]


def iso_cases(n: int = 300, seed: int = 5) -> list[tuple[str, int]]:
    """Random instants written in the ISO 8601 forms the loader reads, with the expected ms."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        t = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(milliseconds=rng.randrange(0, 99 * 365 * 86_400_000))
        offset = timedelta(minutes=rng.choice([0, 60, -300, 330, 545, -570, 840]))
        local = t.astimezone(timezone(offset))
        sep = rng.choice(["T", "t", " "])
        body = local.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
        frac = rng.choice(["", f".{local.microsecond // 1000:03d}", f",{local.microsecond:06d}"])
        t = t.replace(microsecond=(local.microsecond // 1000) * 1000 if frac else 0)
        sign = "-" if offset < timedelta(0) else "+"
        hh, mm = divmod(abs(int(offset.total_seconds())) // 60, 60)
        tz = (
            rng.choice(["Z", "z"])
            if not offset
            else rng.choice([f"{sign}{hh:02d}:{mm:02d}", f"{sign}{hh:02d}{mm:02d}"])
        )
        out.append((body + frac + tz, (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)))
    out += [
        ("2024-02-29", 1_709_164_800_000),
        ("2026-01-01T05", T0 + 5 * 3_600_000),
        ("2026-01-01 05:06+01", T0 + 4 * 3_600_000 + 6 * 60_000),
    ]
    return out


def test_iso_times_parse_like_python(world_snapshot: Snapshot, tmp_path: Path) -> None:
    cases = iso_cases()
    rows = [{**GOOD, "request_id": f"r{i:04d}", "ts": text} for i, (text, _) in enumerate(cases)]
    loaded = run(world_snapshot, LogWriter().jsonl(tmp_path / "iso.jsonl", rows))
    assert loaded.problems.skipped == 0, loaded.problems.listed[:3]
    got = {e["request_id"]: e["ts_ms"] for e in events(loaded)}
    for i, (text, ms) in enumerate(cases):
        assert got[f"r{i:04d}"] == ms, text


def test_an_absent_and_an_empty_header_do_not_repeat_events(world_snapshot: Snapshot, tmp_path: Path) -> None:
    """No header and an empty one are the same client key: each event is counted once."""
    rows = [{**GOOD, "request_id": "r0"}, {**GOOD, "request_id": "r1", "accept_language": "", "client_tz": ""}]
    loaded = run(world_snapshot, LogWriter().jsonl(tmp_path / "empty-headers.jsonl", rows))
    assert sorted(e["request_id"] for e in events(loaded)) == ["r0", "r1"]
    assert loaded.problems.rows_read == 2


def test_line_endings_gzip_and_bad_bytes(world_snapshot: Snapshot, tmp_path: Path) -> None:
    rows = [json.dumps({**GOOD, "request_id": f"r{i}"}).encode() for i in range(4)]
    raw = rows[0] + b"\r\n" + rows[1] + b"\r" + b"\n" + rows[2] + b'\n{"broken": "\xff\xfe' + b"\r\n" + rows[3]
    plain = tmp_path / "mixed.jsonl"
    plain.write_bytes(raw)
    zipped = tmp_path / "mixed.jsonl.gz"
    zipped.write_bytes(gzip.compress(raw))
    for path in (plain, zipped):
        loaded = run(world_snapshot, path)
        assert [e["request_id"] for e in events(loaded)] == ["r0", "r1", "r2", "r3"]
        assert [(p.line, p.reason) for p in loaded.problems.listed] == [(4, "not JSON")]


def test_lines_split_like_python_text_mode(tmp_path: Path) -> None:
    """Blocks are cut anywhere (a tiny block size here): line numbers still match Python's."""
    data = b"a\r\nbb\rccc\n\n\xffd\r\n\r\ne" * 50
    path = tmp_path / "t.txt"
    path.write_bytes(data)
    ours = []
    for table in read_lines(path, block=7):
        ours += [
            (n, t.rstrip("\r\n")) for n, t in zip(table["line"].to_pylist(), table["text"].to_pylist(), strict=True)
        ]
    with path.open(encoding="utf-8", errors="replace") as fh:
        theirs = [(n, t.rstrip("\r\n")) for n, t in enumerate(fh, 1)]
    assert ours == theirs


def test_parquet_rows_and_types(world_snapshot: Snapshot, tmp_path: Path) -> None:
    rows = [{**GOOD, "request_id": f"r{i}", "ip": addr("us_cloud", i)} for i in range(5)]
    rows[2]["account_id"] = None
    rows[3]["ip"] = "nope"
    schema = pa.schema([("ts", pa.timestamp("ms", tz="UTC")), ("request_id", pa.string()), ("account_id", pa.string()),
                        ("api_key_id", pa.string()), ("ip", pa.string()), ("status", pa.int32())])  # fmt: skip
    table = pa.Table.from_pylist(
        [{**r, "ts": datetime.fromtimestamp(r["ts"] / 1000, UTC), "status": 200} for r in rows], schema=schema
    )
    path = tmp_path / "typed.parquet"
    pq.write_table(table, path)
    loaded = run(world_snapshot, path)
    assert [(p.line, p.reason) for p in loaded.problems.listed] == [
        (3, "missing account_id"),
        (4, "ip is not an IP address"),
    ]
    got = events(loaded)
    assert [e["request_id"] for e in got] == ["r0", "r1", "r4"]
    assert {e["ts_ms"] for e in got} == {T0}
    assert {(e["status"], e["country"], e["hosting"], e["user_agent"]) for e in got} == {(200, "US", True, None)}


def test_jsonl_and_parquet_give_the_same_events(world_snapshot: Snapshot, tmp_path: Path, logs: LogWriter) -> None:
    rows = [
        {**GOOD, "ts": T0 + i, "ip": addr("de_home", i) if i % 3 else "2a00:1450:4001:82a::200e", "user_agent": "sdk/1",
         "client_tz": "Asia/Shanghai" if i % 2 else "Europe/Berlin", "rtt_ms": i / 2, "status": 200}
        for i in range(20)
    ]  # fmt: skip
    a = events(run(world_snapshot, LogWriter().jsonl(tmp_path / "a.jsonl.gz", rows)))
    b = events(run(world_snapshot, LogWriter().parquet(tmp_path / "a.parquet", rows)))
    assert a == b
    v6 = next(e for e in a if ":" in e["ip"])
    assert (v6["prefix"], v6["country"], v6["asn"]) == ("2a00:1450:4001::/48", "DE", 15169)
    assert {e["client_restricted"] for e in a if e["client_tz"] == "Asia/Shanghai"} == {True}


def test_directories_and_bad_paths(world_snapshot: Snapshot, tmp_path: Path, logs: LogWriter) -> None:
    d = tmp_path / "logs"
    (d / "day2").mkdir(parents=True)
    logs.jsonl(d / "a.jsonl", [{**GOOD, "request_id": "x1"}])
    logs.parquet(d / "day2" / "b.parquet", [{**GOOD, "request_id": "x2"}])
    (d / "notes.txt").write_text("not a log")
    assert [f.path.name for f in discover([d])] == ["a.jsonl", "b.parquet"]
    assert [e["request_id"] for e in events(run(world_snapshot, d))] == ["x1", "x2"]
    with pytest.raises(ConfigError, match="no such file"):
        discover([tmp_path / "missing.jsonl"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no log files"):
        discover([tmp_path / "empty"])
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ConfigError, match=r"broken\.parquet: cannot read"):
        run(world_snapshot, broken)
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(gzip.compress(random.Random(1).randbytes(100_000))[:5_000])
    with pytest.raises(ConfigError, match=r"cut\.jsonl\.gz: cannot read"):
        run(world_snapshot, truncated)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_accounts_table(world_snapshot: Snapshot, tmp_path: Path, logs: LogWriter, fmt: str) -> None:
    rows: list[dict[str, Any]] = [
        {
            "account_id": "a1",
            "created": "2025-12-01T00:00:00Z",
            "payment_fingerprint": "pf1",
            "email_domain": "x.example",
        },
        {"account_id": "a2", "created": T0, "phone_hash": "ph2", "declared_country": "DE"},
        {"account_id": "", "created": T0},
        {"account_id": "a4", "created": "last week"},
        {"account_id": "a5"},
    ]
    path = tmp_path / f"accounts.{fmt}"
    if fmt == "jsonl":
        logs.jsonl(path, [])
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "csv":
        cols = ["account_id", "created", "payment_fingerprint", "phone_hash", "email_domain", "declared_country"]
        path.write_text(",".join(cols) + "\n" + "".join(",".join(str(r.get(c, "")) for c in cols) + "\n" for r in rows))
    else:
        pq.write_table(
            pa.Table.from_pylist([{**r, "created": str(r["created"]) if "created" in r else None} for r in rows]), path
        )
    ev = LogWriter().jsonl(tmp_path / "e.jsonl", [GOOD])
    loaded = run(world_snapshot, ev, accounts=path)
    assert loaded.account_problems is not None
    reasons = [
        (p.line + (1 if fmt == "csv" else 0) - (1 if fmt == "csv" else 0), p.reason)
        for p in loaded.account_problems.listed
    ]
    first = 2 if fmt == "csv" else 1  # the CSV header is line 1
    expected = [(first + 2, "missing account_id"), (first + 3, "created is neither ISO 8601 nor epoch milliseconds")]
    if fmt == "parquet":  # a number written as text in a typed file is text, not epoch ms
        expected.insert(0, (first + 1, "created is neither ISO 8601 nor epoch milliseconds"))
    assert reasons == expected
    acc = {r["account_id"]: r for r in loaded.accounts.to_pyarrow().to_pylist()}
    assert acc["a1"]["created_ms"] == T0 - 31 * 86_400_000
    assert acc["a1"]["payment_fingerprint"] == "pf1" and acc["a5"]["created_ms"] is None
    if fmt != "parquet":
        assert acc["a2"]["created_ms"] == T0 and acc["a2"]["declared_country"] == "DE"
