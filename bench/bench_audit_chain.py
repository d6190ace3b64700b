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

Then ``audit verify`` (``verify_database``) over a chained log of ``--verify-rows`` decisions
over six months (``report_data.fill`` and ``report_data.chain``; or an existing one,
``--verify-url``), ``--repeat`` times with one worker process per CPU and, interleaved in the
same run, with one process (the peer): wall seconds, rows/s, and the CPU seconds of the verifier
and its workers, with 10 M rows extrapolated linearly from logs of at least ``EXTRAPOLATE_FROM`` rows (the
verifier reads piece by piece, so its time is linear in rows once fixed costs are small; below
that it says so and extrapolates nothing). Worker processes start only above
``verify.PARALLEL_ROWS`` rows: below it both modes run in one process, and the table says so.

Usage::

    python bench/bench_audit_chain.py [--snapshot DIR] [-n 20000] [--repeat 5] [--pg URL]
        [--verify-rows 1000000 | --verify-url URL] [--json]
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from bench_decide import DEFAULT_MIX, build_mix
from common import Report, base_parser, machine, open_warden, parse_checked
from report_data import KEY, chain, fill

from geowarden.audit.chain import RawTx, append, decision_content
from geowarden.audit.schema import sqlite_url
from geowarden.audit.store import AuditLog
from geowarden.audit.verify import PARALLEL_ROWS, verify_database
from geowarden.model import Action, Decision, Evidence, Facts

_EV = (
    Evidence(signal="ip", code="IP_COUNTRY", value="CN"),
    Evidence(signal="ip", code="IP_COUNTRY_RESTRICTED", value="CN"),
)
_SAMPLE = [Decision(action=Action.BLOCK, score=1.0, reasons=_EV[1:], policy_version="default-0123456789ab",
                    decision_id="0" * 32, elapsed_us=20.0, evidence=_EV)]  # fmt: skip

#: Logs smaller than this are not scaled up to 10 M rows (fixed costs would dominate the figure).
EXTRAPOLATE_FROM = 1_000_000


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


def verify_once(url: str, workers: int) -> dict[str, float]:
    """One ``verify_database`` over ``url``: wall and CPU seconds (this process and its workers)."""
    audit = AuditLog(url, key=KEY)
    try:
        c0, k0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        report = verify_database(audit.engine, audit.chain_key.public, workers=workers)
        wall = time.perf_counter() - t0
        c1, k1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        audit.close()
    if not report.ok:
        raise SystemExit(f"the generated log does not verify: {report.problems[0].line()}")
    cpu = sum(getattr(b, f) - getattr(a, f) for a, b in ((c0, c1), (k0, k1)) for f in ("ru_utime", "ru_stime"))
    return {"rows": report.rows, "wall_s": wall, "cpu_s": cpu, "rows_per_s": report.rows / wall}


def bench_verify(rep: Report, args: Any) -> None:
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        url = args.verify_url
        if url is None:
            url = sqlite_url(Path(tmp) / "verify.db") if args.pg is None else fresh_url(Path(tmp), args.pg, -3)
            start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
            t0 = time.perf_counter()
            fill(url, args.verify_rows, start, start + 181 * 86400)
            took = chain(url)
            rep.say(f"verify log: {args.verify_rows:,} decisions in {time.perf_counter() - t0 - took:.0f} s, "
                    f"chained in {took:.0f} s")  # fmt: skip
        runs: dict[str, list[dict[str, float]]] = {"1 process": [], f"{workers} processes": []}
        for r in range(args.repeat):
            for w in (1, workers) if r % 2 == 0 else (workers, 1):
                runs["1 process" if w == 1 else f"{workers} processes"].append(verify_once(url, w))
    load = os.getloadavg()
    med = {m: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for m, rs in runs.items()}
    n = next(iter(med.values()))["rows"]
    scale = n >= EXTRAPOLATE_FROM
    rows = [[m if n > PARALLEL_ROWS or m == "1 process" else f"{m} asked (1 ran: <= {PARALLEL_ROWS:,} rows)",
             f"{v['rows']:,.0f}", v["wall_s"], f"{v['rows_per_s']:,.0f}", v["cpu_s"],
             10_000_000 / v["rows_per_s"] if scale else "-", v["cpu_s"] * 10_000_000 / v["rows"] if scale else "-"]
            for m, v in med.items()]  # fmt: skip
    rep.say(f"audit verify, {args.repeat} runs per mode interleaved, medians; load average after: {load}")
    rep.table(["verify", "rows", "wall s", "rows/s", "CPU s", "10 M rows: wall s", "10 M rows: CPU s"], rows)
    best = med[f"{workers} processes"]
    if not scale:
        rep.say(f"10 M rows not extrapolated: {n:,.0f} rows is too few (fixed costs such as starting "
                f"worker processes dominate below {EXTRAPOLATE_FROM:,}); use --verify-rows {EXTRAPOLATE_FROM} "
                "or more")  # fmt: skip
    else:
        rep.say(f"10 M rows extrapolated: {10_000_000 / best['rows_per_s']:.0f} s wall with {workers} processes "
                f"(target < 60 s: {'ok' if 10_000_000 / best['rows_per_s'] < 60 else 'MISSED'} at this load); "
                f"CPU {best['cpu_s'] * 1e7 / best['rows']:.0f} s, i.e. "
                f"{best['cpu_s'] * 1e7 / best['rows'] / workers:.0f} s on {workers} idle cores")  # fmt: skip
    rep.doc.update(verify=med, verify_runs=runs, verify_load=load, verify_extrapolated=scale)


def bench_decide(rep: Report, args: Any, warden: Any) -> None:
    """Decisions with their audit rows, chained and plain, rounds interleaved (see the module)."""
    ips, _ = build_mix(args.n, DEFAULT_MIX, args.seed)
    facts = [Facts(ip=ip, account_id=f"acct-{i % 500}", api_key_id=f"key-{i % 900}") for i, ip in enumerate(ips)]
    rounds: dict[str, list[dict[str, float]]] = {"plain": [], "chained": []}
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
        med = {m: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for m, rs in rounds.items()}
        rows = [[m, med[m]["wall_us"], med[m]["cpu_us"], f"{med[m]['per_s']:,.0f}"] for m in ("plain", "chained")]
        ratio = {k: med["chained"][k] / med["plain"][k] for k in ("wall_us", "cpu_us")}
        rows.append(["chained / plain", f"{ratio['wall_us']:.3f}", f"{ratio['cpu_us']:.3f}", ""])
        # Each round's pair (the same round number of both modes, run back to back): the spread.
        pairs = {k: sorted(c[k] / p[k] for p, c in zip(rounds["plain"], rounds["chained"], strict=True))
                 for k in ("wall_us", "cpu_us")}  # fmt: skip
        rep.say(f"{args.n:,} decisions per round, {args.repeat} rounds per mode, medians; {args.concurrency} in flight"
                f"; load {os.getloadavg()}")  # fmt: skip
        rep.table(["audit log", "wall µs/decision", "CPU µs/decision", "decisions/s"], rows)
        spread = ", ".join(f"{k.split('_')[0]} {min(v):.3f} to {max(v):.3f}" for k, v in pairs.items())
        budget = {k: v <= 1.10 for k, v in ratio.items()}
        rep.say(f"chain cost: {(ratio['cpu_us'] - 1) * 100:+.1f} % CPU "
                f"({'within' if budget['cpu_us'] else 'OVER'} the +10 % budget), "
                f"{(ratio['wall_us'] - 1) * 100:+.1f} % wall ({'within' if budget['wall_us'] else 'OVER'}) per "
                f"decision; chained/plain of each round's pair: {spread}")  # fmt: skip
        rep.doc.update(medians=med, ratio=ratio, within_budget=budget, pair_ratios=pairs, rounds=rounds)

        work = chain_work_us(fresh_url(Path(tmp), args.pg, -1), args.concurrency)
        share = work / med["plain"]["cpu_us"]
        rep.say(f"chain work alone: {work:.1f} µs CPU per row (hashing, head read and write, signing per batch of "
                f"{args.concurrency}) = {share * 100:.1f} % of a plain decision's CPU")  # fmt: skip
        rep.doc.update(chain_work_us=work, chain_work_share=share)


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="decisions per round")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--pg", default=None, help="a PostgreSQL URL instead of SQLite (a schema per round)")
    parser.add_argument(
        "--verify-rows", type=int, default=1_000_000, help="rows of the log audit verify reads (0: skip)"
    )
    parser.add_argument("--verify-url", default=None, help="verify this chained log (made by report_data) instead")
    parser.add_argument("--skip-decide", action="store_true", help="only the verifier")
    args = parse_checked(parser, argv)

    rep = Report("bench_audit_chain: the audit chain's cost per decision, and audit verify", args.json)
    env = machine()
    rep.doc.update(machine=env, backend="postgresql" if args.pg else "sqlite", n=args.n, repeat=args.repeat)
    rep.say(f"machine  : {env['cpu']} x{env['cpus']} (shared, noisy), load {env['loadavg']}")
    if not args.skip_decide:
        bench_decide(rep, args, open_warden(args.snapshot))
    if args.verify_rows or args.verify_url:
        bench_verify(rep, args)
    rep.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
