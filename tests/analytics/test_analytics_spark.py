"""One full job on PySpark local mode: the same files (JSON Lines with malformed rows, Parquet, an
accounts table) through the Spark loader and every analysis give the same findings, the same
malformed rows and the same counts as on DuckDB.

The SparkSession is the test process's one (``spark_support.spark_session``: started once, about
20 s); the Spark engine reuses it as ``geowarden analyze --backend spark`` would reuse a running one.
"""

from __future__ import annotations

import gc
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from analytics_world import T0, LogWriter, addr, infra_scenario, keys_scenario
from spark_support import as_dicts, spark_session

from geowarden.analytics.run import AnalysisResult, analyze
from geowarden.intel.snapshot import Snapshot

pytestmark = pytest.mark.slow  # starts PySpark (about 20 s)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("spark")
    events = (keys_scenario() + infra_scenario()).events
    w = LogWriter()
    half = len(events) // 2
    jsonl = w.jsonl(d / "part-1.jsonl", events[:half])
    with jsonl.open("a", encoding="utf-8") as fh:  # malformed rows, a blank line and CRLF
        fh.write("\nnot json\r\n")
        fh.write(
            json.dumps(
                {
                    "ts": "2026-01-01T00:00:00+08:00",
                    "request_id": "x1",
                    "account_id": "a",
                    "api_key_id": "k",
                    "ip": "nope",
                }
            )
            + "\n"
        )
        fh.write(
            json.dumps({"ts": True, "request_id": "x2", "account_id": "a", "api_key_id": "k", "ip": addr("us_home", 1)})
            + "\n"
        )
        fh.write(
            json.dumps(
                {
                    "ts": "2026-01-02 03:04:05.5-0130",
                    "request_id": "x3",
                    "account_id": "iso",
                    "api_key_id": "k",
                    "ip": addr("de_home", 2),
                    "input_tokens": "12",
                }
            )
            + "\n"
        )
    rest = [dict(e) for e in events[half:]]
    rest[3]["account_id"] = None
    w.parquet(d / "part-2.parquet", rest)
    accounts = d / "accounts.jsonl"
    rows = [
        {"account_id": f"acct-relay-{i:02d}", "created": T0 - 86_400_000, "payment_fingerprint": "pf-1"}
        for i in range(30)
    ]
    rows.append({"account_id": "", "created": "never"})
    accounts.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return {"jsonl": jsonl, "parquet": d / "part-2.parquet", "accounts": accounts}


@pytest.fixture(scope="module")
def quiet() -> Iterator[None]:
    """PySpark 4.0 and Ibis 12 call what pandas 3 deprecates, and py4j leaves result sockets to
    the garbage collector: noise, not failures of this test."""
    with warnings.catch_warnings():
        try:
            from pandas.errors import Pandas4Warning

            warnings.filterwarnings("ignore", category=Pandas4Warning)
        except ImportError:  # pandas 2 does not warn
            pass
        warnings.filterwarnings("ignore", category=ResourceWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="pyspark")
        yield
        gc.collect()


def job(backend: str, files: dict[str, Path], snapshot: Snapshot) -> AnalysisResult:
    return analyze([files["jsonl"], files["parquet"]], accounts=files["accounts"], backend=backend, snapshot=snapshot)


@pytest.fixture(scope="module")
def both(files: dict[str, Path], world_snapshot: Snapshot, quiet: None) -> tuple[AnalysisResult, AnalysisResult]:
    spark_session()  # the process's session: the engine reuses it
    return job("duckdb", files, world_snapshot), job("spark", files, world_snapshot)


def test_same_findings(both: tuple[AnalysisResult, AnalysisResult]) -> None:
    duck, spark = both
    assert as_dicts(spark.findings) == as_dicts(duck.findings)
    kinds = {f.kind for f in duck.findings}
    assert {"key_shared", "infrastructure", "restricted_use"} <= kinds  # the comparison is not of two empty lists
    assert any(f.members and f.kind == "infrastructure" for f in duck.findings)  # members on both backends
    assert spark.stats["backend"] == "spark" and duck.stats["backend"] == "duckdb"
    assert spark.stats["analyses"] == duck.stats["analyses"]


def test_same_problems_and_counts(both: tuple[AnalysisResult, AnalysisResult], files: dict[str, Path]) -> None:
    duck, spark = both
    assert spark.problems_dict() == duck.problems_dict()
    reasons = [(Path(p.file).name, p.reason) for p in duck.problems.listed]
    assert reasons == [
        ("part-1.jsonl", "not JSON"),
        ("part-1.jsonl", "ip is not an IP address"),
        ("part-1.jsonl", "ts is not a time"),
        ("part-2.parquet", "missing account_id"),
    ]
    assert duck.problems.listed[-1].line == 4  # the Parquet row number
    lines = files["jsonl"].read_text(encoding="utf-8").splitlines()
    assert duck.problems.listed[0].line == lines.index("not json") + 1
    keys = ("rows_read", "events", "skipped", "accounts", "keys", "distinct_ips", "accounts_table", "accounts_skipped")
    assert {k: spark.stats[k] for k in keys} == {k: duck.stats[k] for k in keys}
    assert duck.stats["accounts_table"] == 30 and duck.stats["accounts_skipped"] == 1


def test_same_summary(both: tuple[AnalysisResult, AnalysisResult]) -> None:
    duck, spark = both
    summary: dict[str, Any] = duck.summary
    assert spark.summary == summary
    assert summary["volume_by_country_day"] and summary["top_asns"]
