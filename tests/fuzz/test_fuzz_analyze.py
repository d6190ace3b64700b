"""``geowarden analyze``: JSON Lines (plain and gzipped, whole and truncated), Parquet (whole and
damaged) and the accounts table, with every kind of damaged row among good ones."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given
from hypothesis import strategies as st

from fuzz.fuzzkit import Run, costly, file_bytes, run_cli, write
from fuzz.logs import TS, LogLine, log_line


def _check_counts(r: Run, lines: list[LogLine], where: str) -> None:
    """Every row counted, each known-bad one reported by line, no good one lost; exit 3 when rows
    were skipped and, with a one-line reason, when none was usable."""
    doc = json.loads(r.stdout)
    problems, stats = doc["problems"], doc["stats"]
    numbered = [(n, ln) for n, ln in enumerate(lines, 1) if ln.is_row]
    assert problems["rows_read"] == len(numbered)
    assert stats["events"] + problems["skipped"] == len(numbered)
    reported = {p["line"] for p in problems["rows"] if p["file"] == where}
    assert {n for n, ln in numbered if ln.good is False} <= reported
    assert not {n for n, ln in numbered if ln.good is True} & reported
    assert stats["events"] >= sum(1 for _, ln in numbered if ln.good)
    if stats["events"] == 0:
        assert r.code == 3 and "no usable events" in r.stderr, r
    else:
        assert r.code == (3 if problems["skipped"] else 0), r.stderr


@costly()
@given(lines=st.lists(log_line, max_size=8), crlf=st.booleans(), bom=st.booleans(), gz=st.booleans())
def test_json_lines(
    fuzz_env: dict[str, str], scratch: Path, lines: list[LogLine], crlf: bool, bom: bool, gz: bool
) -> None:
    data = file_bytes(lines, bom=bom, crlf=crlf, final_newline=True)
    name = "logs.jsonl.gz" if gz else "logs.jsonl"
    path = write(scratch, name, gzip.compress(data) if gz else data)
    r = run_cli(["analyze", str(path), "--json", "-q"], fuzz_env, reader="analyze .jsonl" + (".gz" if gz else ""))
    _check_counts(r, lines, str(path))


@costly()
@given(data=st.binary(max_size=200), cut=st.integers(1, 200))
def test_damaged_gzip_is_one_line_error(fuzz_env: dict[str, str], scratch: Path, data: bytes, cut: int) -> None:
    whole = gzip.compress(
        b'{"ts": %d, "request_id": "r", "account_id": "a", "api_key_id": "k", "ip": "8.8.8.8"}\n' % TS
    )
    path = write(scratch, "cut.jsonl.gz", (whole + data)[: max(1, len(whole) - cut)] if cut % 2 else data)
    r = run_cli(["analyze", str(path), "--json", "-q"], fuzz_env, reader="analyze damaged .gz")
    assert r.code in (2, 3), r
    if r.code == 2:
        assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stderr


@st.composite
def parquet_bytes(draw: st.DrawFn) -> tuple[bytes, int]:
    """A Parquet file whose columns have a drawn type, and how many rows it holds."""
    n = draw(st.integers(0, 5))
    ts_col = draw(
        st.sampled_from(
            [
                pa.array([TS + i for i in range(n)], pa.int64()),
                pa.array([float("nan")] * n, pa.float64()),
                pa.array(["2026-01-02T03:04:05Z"] * n),
                pa.array([-(10**15)] * n, pa.int64()),
                pa.array([None] * n, pa.int64()),
            ]
        )
    )
    ip_col = pa.array(draw(st.lists(st.sampled_from(["8.8.8.8", "1.2.\x003.4", "", "::1"]), min_size=n, max_size=n)))
    table = pa.table(
        {
            "ts": ts_col,
            "request_id": pa.array([f"r{i}" for i in range(n)]),
            "account_id": pa.array(draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n))),
            "api_key_id": pa.array(["k"] * n),
            "ip": ip_col,
            "input_tokens": pa.array(draw(st.lists(st.floats(allow_nan=True), min_size=n, max_size=n))),
        }
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes(), n


@costly()
@given(made=parquet_bytes(), damage=st.one_of(st.none(), st.integers(0, 2000)))
def test_parquet(fuzz_env: dict[str, str], scratch: Path, made: tuple[bytes, int], damage: int | None) -> None:
    data, n = made
    if damage is not None:  # cut the file short, or flip one byte
        data = (
            data[: damage % max(1, len(data))]
            if damage % 2
            else bytes(b ^ 0xFF if i == damage % len(data) else b for i, b in enumerate(data))
        )
    path = write(scratch, "logs.parquet", data)
    r = run_cli(["analyze", str(path), "--json", "-q"], fuzz_env, reader="analyze .parquet")
    if r.code == 2:  # unreadable: one line
        assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stderr
        return
    doc = json.loads(r.stdout)
    assert doc["stats"]["events"] + doc["problems"]["skipped"] == doc["problems"]["rows_read"]
    if damage is None:
        assert doc["problems"]["rows_read"] == n
    assert r.code == (3 if doc["problems"]["skipped"] or not doc["stats"]["events"] else 0)


ACCOUNT_ROWS = [
    b'{"account_id": "a1", "created": "2025-12-01", "declared_country": "DE"}',
    b'{"account_id": "a2", "created": 1700000000000, "payment_fingerprint": "p1"}',
    b'{"account_id": null}',
    b'{"created": "2025-12-01"}',
    b'{"account_id": "a3", "created": -5}',
    b'{"account_id": "a4", "created": "1960-01-01"}',
    b'{"account_id": {"x": 1}}',
    b"\x00\x01\x02",
    b"not json",
]


@costly()
@given(
    rows=st.lists(st.sampled_from(ACCOUNT_ROWS), max_size=6),
    csv=st.booleans(),
    crlf=st.booleans(),
)
def test_accounts_table(fuzz_env: dict[str, str], scratch: Path, rows: list[bytes], csv: bool, crlf: bool) -> None:
    logs = write(
        scratch, "acc-logs.jsonl",
        b'{"ts": %d, "request_id": "r", "account_id": "a1", "api_key_id": "k", "ip": "8.8.8.8"}\n' % TS,
    )  # fmt: skip
    end = b"\r\n" if crlf else b"\n"
    if csv:
        body = (
            b"account_id,created,declared_country"
            + end
            + end.join(r.replace(b'{"account_id": ', b"").replace(b"}", b"")[:40] for r in rows)
        )
        path = write(scratch, "accounts.csv", body)
    else:
        path = write(scratch, "accounts.jsonl", end.join(rows))
    r = run_cli(["analyze", str(logs), "--accounts", str(path), "--json", "-q"], fuzz_env, reader="analyze --accounts")
    if r.code == 2:
        assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stderr
        return
    acc = json.loads(r.stdout)["problems"]["accounts"]
    usable = acc["rows_read"] - acc["skipped"]
    assert r.code == (3 if acc["skipped"] or not usable else 0), r
    if not usable:
        assert "no usable rows in the accounts table" in r.stderr
