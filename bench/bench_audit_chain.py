"""What the audit hash chain costs a decision, and how fast ``audit verify`` reads the chain.

The peer is the same audit log without the chain (``AuditLog(chained=False)``, a benchmark-only
switch), measured in the same run, rounds interleaved (plain, chained, plain, ...), each round
on a fresh SQLite database in a temporary directory (or a fresh PostgreSQL schema with --pg).

One decision here is what ``POST /v1/decide`` does after parsing the request: ``warden.decide``
and ``await audit.submit_async`` (acknowledged once committed), ``--concurrency`` requests in
flight on one event loop as in a service worker. Without the HTTP layer the denominator is
smaller than the service's, so the ratio is an upper bound of the chain's share of
``/v1/decide``. Reported per mode: the median over rounds of wall time per decision, process CPU
time per decision (every thread: the decision, the writer, the hashing and signing), and
decisions/s; then chained/plain for each.

Then ``verify_database`` over the last chained database: rows/s, and 10 M rows extrapolated
linearly (the verifier streams segment by segment, so its time is linear in rows).

Usage::

    python bench/bench_audit_chain.py [--snapshot DIR] [-n 20000] [--repeat 5] [--pg URL] [--json]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from bench_decide import DEFAULT_MIX, build_mix
from common import Report, base_parser, machine, open_warden, parse_checked

from geowarden.audit.chain import RawTx, append, decision_content
from geowarden.audit.schema import sqlite_url
from geowarden.audit.store import AuditLog
from geowarden.audit.verify import verify_database
from geowarden.model import Action, Decision, Evidence, Facts

_EV = (
    Evidence(signal="ip", code="IP_COUNTRY", value="CN"),
    Evidence(signal="ip", code="IP_COUNTRY_RESTRICTED", value="CN"),
)
_SAMPLE = [Decision(action=Action.BLOCK, score=1.0, reasons=_EV[1:], policy_version="default-0123456789ab",
                    decision_id="0" * 32, elapsed_us=20.0, evidence=_EV)]  # fmt: skip


def run_round(warden: Any, facts: list[Facts], url: str, *, chained: bool, concurrency: int) -> dict[str, float]:
    audit = AuditLog(url, key=b"bench-audit-key-" * 2, chained=chained)

    async def worker(items: list[Facts]) -> None:
        for f in items:
            d = warden.decide(f)
            await audit.submit_async(d, f)

    async def main() -> None:
        await asyncio.gather(*(worker(facts[i::concurrency]) for i in range(concurrency)))

    try:
        asyncio.run(_warm(audit, warden, facts[:200]))
        w0, c0 = time.perf_counter(), time.process_time()
        asyncio.run(main())
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    finally:
        audit.close()
    n = len(facts)
    return {"wall_us": wall / n * 1e6, "cpu_us": cpu / n * 1e6, "per_s": n / wall}


async def _warm(audit: AuditLog, warden: Any, facts: list[Facts]) -> None:
    for f in facts:
        await audit.submit_async(warden.decide(f), f)


def chain_work_us(url: str, batch: int, batches: int = 300) -> float:
    """CPU µs per row of what the chain adds to a commit: the content hash of each row, then per
    batch the head read, the chain rows, the signed head (and checkpoints); each batch's
    transaction without the chain is timed too and subtracted."""
    audit = AuditLog(url, key=b"bench-audit-key-" * 2)
    row = audit.row_for(next(iter(_SAMPLE)), Facts(ip="1.2.4.8", account_id="a", api_key_id="k"))
    try:

        def one(chained: bool, i: int) -> None:
            tx = RawTx(audit.engine)
            if chained:
                entries = [("d", f"bench-{i}-{j}", decision_content(row), row["ts"]) for j in range(batch)]
                append(tx, audit.chain_key, entries)
            tx.commit()
            tx.close()

        c0 = time.process_time()
        for i in range(batches):
            one(False, i)
        base = time.process_time() - c0
        c0 = time.process_time()
        for i in range(batches):
            one(True, i)
        return (time.process_time() - c0 - base) / (batches * batch) * 1e6
    finally:
        audit.close()


def fresh_url(base: Path, pg: str | None, i: int) -> str:
    if pg is None:
        return sqlite_url(base / f"audit-{i}.db")
    schema = "bench_chain_" + uuid.uuid4().hex[:8]
    eng = sa.create_engine(pg)
    with eng.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
    eng.dispose()
    return pg + ("&" if "?" in pg else "?") + f"options=-csearch_path%3D{schema}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="decisions per round")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--pg", default=None, help="a PostgreSQL URL instead of SQLite (a schema per round)")
    args = parse_checked(parser, argv)

    rep = Report("bench_audit_chain: the audit chain's cost per decision, and audit verify", args.json)
    warden = open_warden(args.snapshot)
    env = machine()
    rep.doc.update(machine=env, backend="postgresql" if args.pg else "sqlite", n=args.n, repeat=args.repeat)
    rep.say(f"machine  : {env['cpu']} x{env['cpus']} (shared, noisy), load {env['loadavg']}")
    ips, _ = build_mix(args.n, DEFAULT_MIX, args.seed)
    facts = [Facts(ip=ip, account_id=f"acct-{i % 500}", api_key_id=f"key-{i % 900}") for i, ip in enumerate(ips)]
    rounds: dict[str, list[dict[str, float]]] = {"plain": [], "chained": []}
    last_url = ""
    with tempfile.TemporaryDirectory() as tmp:
        run_round(
            warden, facts, fresh_url(Path(tmp), args.pg, -2), chained=False, concurrency=args.concurrency
        )  # warm-up
        for r in range(args.repeat):
            for mode in ("plain", "chained") if r % 2 == 0 else ("chained", "plain"):
                url = fresh_url(Path(tmp), args.pg, len(rounds["plain"]) + len(rounds["chained"]))
                rounds[mode].append(
                    run_round(warden, facts, url, chained=mode == "chained", concurrency=args.concurrency)
                )
                if mode == "chained":
                    last_url = url
        med = {m: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for m, rs in rounds.items()}
        rows = [[m, med[m]["wall_us"], med[m]["cpu_us"], f"{med[m]['per_s']:,.0f}"] for m in ("plain", "chained")]
        ratio = {k: med["chained"][k] / med["plain"][k] for k in ("wall_us", "cpu_us")}
        rows.append(["chained / plain", f"{ratio['wall_us']:.3f}", f"{ratio['cpu_us']:.3f}", ""])
        rep.say(f"{args.n:,} decisions per round, {args.repeat} rounds per mode, medians; {args.concurrency} in flight")
        rep.table(["audit log", "wall µs/decision", "CPU µs/decision", "decisions/s"], rows)
        budget = ratio["cpu_us"] <= 1.10
        rep.say(f"chain cost: +{(ratio['cpu_us'] - 1) * 100:.1f} % CPU, +{(ratio['wall_us'] - 1) * 100:.1f} % wall "
                f"per decision (budget +10 %: {'ok' if budget else 'MISSED'})")  # fmt: skip
        rep.doc.update(medians=med, ratio=ratio, within_budget=budget)

        work = chain_work_us(fresh_url(Path(tmp), args.pg, -1), args.concurrency)
        share = work / med["plain"]["cpu_us"]
        rep.say(f"chain work alone: {work:.1f} µs CPU per row (hashing, head read and write, signing per batch of "
                f"{args.concurrency}) = {share * 100:.1f} % of a plain decision's CPU")  # fmt: skip
        rep.doc.update(chain_work_us=work, chain_work_share=share)

        audit = AuditLog(last_url, key=b"bench-audit-key-" * 2)
        try:
            t0 = time.perf_counter()
            report = verify_database(audit.engine, audit.chain_key.public)
            took = time.perf_counter() - t0
        finally:
            audit.close()
        per_s = report.rows / took
        rep.say(f"audit verify: {report.rows:,} rows in {took:.2f} s = {per_s:,.0f} rows/s, ok={report.ok}; "
                f"10 M rows extrapolated: {10_000_000 / per_s:.0f} s (target < 60 s)")  # fmt: skip
        rep.doc.update(verify={"rows": report.rows, "seconds": took, "rows_per_s": per_s,
                               "extrapolated_10m_s": 10_000_000 / per_s, "ok": report.ok})  # fmt: skip
    rep.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
