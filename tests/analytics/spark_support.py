"""Support for the analysis tests: enriched ``events`` and ``accounts`` tables built by hand (the
columns of geowarden.analytics.findings), analysis contexts on DuckDB and on PySpark local mode
(one SparkSession per test process, started on first use)."""

from __future__ import annotations

import atexit
import functools
import gc
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import ibis
import pyarrow as pa

from geowarden.analytics.findings import AnalysisContext, Finding
from geowarden.policy import default_restricted
from helpers import require

EVENTS = pa.schema(
    [
        ("ts", pa.timestamp("us", tz="UTC")),
        ("ts_ms", pa.int64()),
        ("request_id", pa.string()),
        ("account_id", pa.string()),
        ("api_key_id", pa.string()),
        ("ip", pa.string()),
        ("prefix", pa.string()),
        ("country", pa.string()),
        ("asn", pa.int64()),
        ("org", pa.string()),
        ("hosting", pa.bool_()),
        ("vpn", pa.bool_()),
        ("proxy", pa.bool_()),
        ("tor", pa.bool_()),
        ("user_agent", pa.string()),
        ("accept_language", pa.string()),
        ("client_tz", pa.string()),
        ("pop", pa.string()),
        ("model", pa.string()),
        ("prompt_fingerprint", pa.string()),
        ("rtt_ms", pa.float64()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("status", pa.int64()),
    ]
)

ACCOUNTS = pa.schema(
    [
        ("account_id", pa.string()),
        ("created", pa.timestamp("us", tz="UTC")),
        ("payment_fingerprint", pa.string()),
        ("phone_hash", pa.string()),
        ("email_domain", pa.string()),
        ("organisation", pa.string()),
        ("declared_country", pa.string()),
    ]
)

EVENT_DEFAULTS: dict[str, Any] = {
    "hosting": False,
    "vpn": False,
    "proxy": False,
    "tor": False,
    "status": 200,
    "input_tokens": 100,
    "output_tokens": 200,
}

T0 = int(datetime(2025, 3, 1, tzinfo=UTC).timestamp() * 1000)  # the start of every test log
HOUR = 3_600_000
DAY = 24 * HOUR


def events_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    """Events from dicts with at least ``ts_ms``, ``account_id`` and ``ip``; ``prefix`` defaults
    to the address's /24, ``api_key_id`` to ``key-<account>``, ``request_id`` to a counter."""
    columns: dict[str, list[Any]] = {name: [] for name in EVENTS.names}
    for i, row in enumerate(rows):
        full = {**EVENT_DEFAULTS, **row}
        full.setdefault("request_id", f"r{i}")
        full.setdefault("api_key_id", f"key-{full['account_id']}")
        full.setdefault("prefix", ".".join(full["ip"].split(".")[:3]) + ".0/24")
        full["ts"] = datetime.fromtimestamp(full["ts_ms"] / 1000, UTC)
        for name in EVENTS.names:
            columns[name].append(full.get(name))
    return pa.table(columns, schema=EVENTS)


def accounts_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    """Accounts from dicts; ``created`` given as epoch milliseconds."""
    columns: dict[str, list[Any]] = {name: [] for name in ACCOUNTS.names}
    for row in rows:
        for name in ACCOUNTS.names:
            value = row.get(name)
            if name == "created" and value is not None:
                value = datetime.fromtimestamp(value / 1000, UTC)
            columns[name].append(value)
    return pa.table(columns, schema=ACCOUNTS)


def duckdb_context(
    events: pa.Table, accounts: pa.Table | None = None, settings: dict[str, dict[str, Any]] | None = None
) -> AnalysisContext:
    con = ibis.duckdb.connect()
    ev = con.create_table("events", events)
    ac = con.create_table("accounts", accounts) if accounts is not None else None
    return AnalysisContext(ev, ac, "duckdb", default_restricted(), settings or {})


def require_spark() -> None:
    """Skip when PySpark or Java is missing, except under CI where that is a failure."""
    missing = []
    try:
        import pyspark  # noqa: F401
    except ImportError:
        missing.append("pyspark")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        missing.append("java")
    require(not missing, f"{' and '.join(missing)} not available")


@functools.cache
def spark_session() -> Any:
    """One local SparkSession for the test process (about 10-30 s to start): one core, two shuffle
    partitions, no UI, UTC."""
    require_spark()
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("geowarden-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.warehouse.dir", tempfile.mkdtemp(prefix="geowarden-spark-"))
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    atexit.register(session.stop)
    return session


def spark_context(
    events: pa.Table,
    accounts: pa.Table | None = None,
    settings: dict[str, dict[str, Any]] | None = None,
    name: str = "events",
) -> AnalysisContext:
    """The same tables on the shared SparkSession, as temporary views (nothing written to disk;
    ``name`` keeps test modules apart)."""
    session = spark_session()
    con = ibis.pyspark.connect(session)
    session.createDataFrame(events).createOrReplaceTempView(name)
    ac = None
    if accounts is not None:
        session.createDataFrame(accounts).createOrReplaceTempView(f"{name}_accounts")
        ac = con.table(f"{name}_accounts")
    return AnalysisContext(con.table(name), ac, "spark", default_restricted(), settings or {})


def on_spark(analysis: Callable[[AnalysisContext], list[Finding]], ctx: AnalysisContext) -> list[Finding]:
    """Run an analysis on Spark without the environment's noise failing the test: pandas 3 warns
    (``Pandas4Warning``) about what PySpark 4.0 and Ibis 12 call when they convert results, and
    py4j leaves result sockets to the garbage collector (collected here, inside the filter)."""
    with warnings.catch_warnings():
        try:
            from pandas.errors import Pandas4Warning

            warnings.filterwarnings("ignore", category=Pandas4Warning)
        except ImportError:  # pandas 2 does not warn
            pass
        warnings.filterwarnings("ignore", category=ResourceWarning)
        try:
            return analysis(ctx)
        finally:
            gc.collect()


def as_dicts(findings: list[Finding]) -> list[dict[str, Any]]:
    """Findings as JSON-ready dicts, sorted, for comparing two backends."""
    return sorted((f.to_dict() for f in findings), key=lambda d: (d["kind"], d["subject"]))
