"""``audit verify``: recompute the chain of an audit database and name every row that breaks it.

Checks, segment by segment (oldest first):

- each head's Ed25519 signature, with the public key the verifier trusts (never one read from
  the database being checked);
- that each segment starts from the previous segment's head (a whole segment deleted shows
  here) and that seq numbers run on without a gap between segments;
- in each segment that is not pruned, row by row in seq order: the row exists (else *deleted*),
  its content still hashes to ``content_hash`` (else *edited*), it links to the row before it
  (else *reordered*, naming the row it was chained after, or *deleted* for a gap in seq), and
  its own ``row_hash`` is what its fields give (else the chain row itself was edited);
- that the last row is the signed head (rows cut off at the end show here) and every signed
  checkpoint matches its row;
- that no decision or review event is outside the chain (a row inserted behind geowarden's back).

Nothing is repaired: a problem is reported with its segment, seq, kind and reference.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from geowarden.audit.chain import (
    DECISION_HASHED,
    EVENT_HASHED,
    GENESIS,
    PublicKey,
    checkpoint_payload,
    decision_content_of,
    event_content,
    head_payload,
    heads,
    row_hash,
)

MAX_PROBLEMS = 1000  # listed; the count goes on


@dataclass(frozen=True, slots=True)
class Problem:
    """One break in the chain: where (segment, seq, kind d|e, ref) and what, in one line."""

    segment: str | None
    seq: int | None
    kind: str | None
    ref: str | None
    problem: str

    def line(self) -> str:
        where = []
        if self.segment is not None:
            where.append(f"segment {self.segment}")
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        if self.ref is not None:
            where.append(f"{'decision' if self.kind == 'd' else 'review event'} {self.ref}")
        return f"{', '.join(where)}: {self.problem}" if where else self.problem


@dataclass(slots=True)
class VerifyReport:
    """What ``audit verify`` found; ``ok`` when there is no problem."""

    key_id: str
    segments: int = 0
    pruned_segments: int = 0
    rows: int = 0
    head: dict[str, Any] | None = None  # the latest segment's head: segment, last_seq, head_hash
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    found: dict[str, int] = field(default_factory=lambda: {"d": 0, "e": 0})  # chained rows present

    def merge(self, other: VerifyReport) -> None:
        """Add a segment's report (verified apart, in another process) to this one."""
        self.rows += other.rows
        for k, v in other.found.items():
            self.found[k] += v
        self.problem_count += other.problem_count
        self.problems.extend(other.problems[: max(0, MAX_PROBLEMS - len(self.problems))])

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, segment: str | None, seq: int | None, kind: str | None, ref: str | None, problem: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(segment, seq, kind, ref, problem))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "key_id": self.key_id, "segments": self.segments, "pruned_segments": self.pruned_segments,
            "rows": self.rows, "head": self.head, "problem_count": self.problem_count,
            "problems": [asdict(p) | {"message": p.line()} for p in self.problems],
        }  # fmt: skip


_HEAD_COLS = tuple(c.name for c in heads.columns)
_D = ", ".join(f"d.{c}" for c in DECISION_HASHED)
_SEGMENT_ROWS = sa.text(
    f"SELECT c.seq, c.kind, c.ref, c.content_hash, c.prev_hash, c.row_hash, d.decision_id IS NOT NULL, {_D} "  # noqa: S608
    "FROM audit_chain c LEFT JOIN decisions d ON c.kind = 'd' AND d.decision_id = c.ref "
    "WHERE c.segment = :seg ORDER BY c.seq"
)
_SEGMENT_EVENTS = sa.text(
    f"SELECT CAST(e.id AS VARCHAR(40)), {', '.join('e.' + c for c in EVENT_HASHED)} FROM review_events e "  # noqa: S608
    "JOIN audit_chain c ON c.kind = 'e' AND c.ref = CAST(e.id AS VARCHAR(40)) WHERE c.segment = :seg"
)


PARALLEL_ROWS = 200_000  # below this many rows, worker processes cost more than they save


def verify_database(
    engine: sa.Engine,
    public: PublicKey,
    *,
    progress: Callable[[str], None] | None = None,
    workers: int | None = None,
) -> VerifyReport:
    """Verify the whole chain of ``engine``'s audit database against ``public``.

    Segments are independent once their heads are checked, so with more than
    :data:`PARALLEL_ROWS` rows they are verified in ``workers`` processes (default: one per CPU)."""
    report = VerifyReport(key_id=public.key_id)
    todo: list[dict[str, Any]] = []
    with engine.connect() as conn:
        head_rows = [dict(r._mapping) for r in conn.execute(sa.select(heads).order_by(heads.c.segment))]
        prev_hash, prev_last = GENESIS, 0
        for h in head_rows:
            seg = h["segment"]
            report.segments += 1
            if not public.verifies(head_payload(h), h["signature"]):
                other = "" if h["key_id"] == public.key_id else f" (signed by key {h['key_id']}, not {public.key_id})"
                report.add(seg, None, None, None, f"the segment's signed head does not verify{other}: head edited")
            if h["genesis"] != prev_hash:
                report.add(seg, h["first_seq"], None, None, "the segment does not start from the previous segment's "
                           "head: a segment before it was deleted or altered")  # fmt: skip
            if h["first_seq"] != prev_last + 1:
                report.add(seg, h["first_seq"], None, None, f"seq {prev_last + 1}..{h['first_seq'] - 1} missing "
                           "between segments: rows or a whole segment deleted")  # fmt: skip
            prev_hash, prev_last = h["head_hash"], h["last_seq"]
            if h["state"] == "pruned":
                report.pruned_segments += 1
                continue
            todo.append(h)
        workers = workers if workers is not None else os.cpu_count() or 1
        if workers > 1 and len(todo) > 1 and sum(h["n"] for h in todo) > PARALLEL_ROWS:
            url = engine.url.render_as_string(hide_password=False)
            ctx = multiprocessing.get_context("spawn")  # the caller may have threads (the audit writer)
            with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx) as pool:
                jobs = [pool.submit(_segment_job, url, public.raw, h) for h in todo]
                for h, job in zip(todo, jobs, strict=True):
                    report.merge(job.result())
                    if progress is not None:
                        progress(f"segment {h['segment']}: {h['n']:,} rows")
        else:
            for h in todo:
                if progress is not None:
                    progress(f"segment {h['segment']}: {h['n']:,} rows")
                _verify_segment(conn, h, public, report)
        if head_rows:
            last = head_rows[-1]
            report.head = {"segment": last["segment"], "last_seq": last["last_seq"], "head_hash": last["head_hash"]}
        _unchained(conn, {h["segment"] for h in head_rows}, report)
    return report


def _segment_job(url: str, public_raw: bytes, head: dict[str, Any]) -> VerifyReport:
    """One segment verified in a worker process, on its own engine."""
    public = PublicKey(public_raw)
    report = VerifyReport(key_id=public.key_id)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            _verify_segment(conn, head, public, report)
    finally:
        engine.dispose()
    return report


def _verify_segment(conn: sa.Connection, h: dict[str, Any], public: PublicKey, report: VerifyReport) -> None:
    seg = h["segment"]
    events = {r[0]: r[1:] for r in conn.execute(_SEGMENT_EVENTS, {"seg": seg})}
    cps = {
        int(r.seq): r
        for r in conn.execute(sa.text("SELECT seq, row_hash, signature FROM audit_checkpoints WHERE segment = :seg"),
                              {"seg": seg})
    }  # fmt: skip
    running, expect, n, broken = h["genesis"], h["first_seq"], 0, []
    for seq, kind, ref, content_hash, prev, stored, present, *values in _stream(conn, seg):
        if seq != expect:
            report.add(seg, expect, None, None, f"seq {expect}..{seq - 1} missing from the chain: rows deleted")
        if kind == "d":
            content = decision_content_of(values) if present else None
        else:
            ev = events.get(ref)
            content = event_content(dict(zip(EVENT_HASHED, ev, strict=True))) if ev is not None else None
        if content is None:
            report.add(seg, seq, kind, ref, "deleted: the chain holds it but the row is gone")
        else:
            report.found[kind] += 1
            if content != content_hash:
                report.add(seg, seq, kind, ref, "edited: its content no longer matches its hash")
        if prev != running:
            broken.append((seq, kind, ref, prev))
        elif row_hash(prev, seq, seg, kind, ref, content_hash) != stored:
            report.add(seg, seq, kind, ref, "the chain row itself was edited (its hash does not match its fields)")
        cp = cps.pop(seq, None)
        if cp is not None and (cp.row_hash != stored or not public.verifies(checkpoint_payload(
                {"segment": seg, "seq": seq, "row_hash": cp.row_hash}), cp.signature)):  # fmt: skip
            report.add(seg, seq, kind, ref, "a signed checkpoint does not match this row")
        running, expect, n = stored, seq + 1, n + 1
        report.rows += 1
    for seq in cps:
        report.add(seg, seq, None, None, "a signed checkpoint names a row that is gone: rows deleted")
    if broken:
        _diagnose(conn, seg, broken, report)
    if running != h["head_hash"] or expect - 1 != h["last_seq"] or n != h["n"]:
        report.add(seg, expect - 1 if n else None, None, None,
                   f"the chain ends at seq {expect - 1} with {n:,} rows but the signed head says seq {h['last_seq']} "
                   f"with {h['n']:,}: rows at the end deleted or added")  # fmt: skip


def _stream(conn: sa.Connection, seg: str) -> Iterator[tuple[Any, ...]]:
    """The segment's chain rows joined with their decisions, in seq order, streamed through the
    driver's own cursor (a server-side one on PostgreSQL): the verifier's inner loop."""
    raw: Any = conn.connection.driver_connection
    sql = str(_SEGMENT_ROWS.text).replace(":seg", "?")
    if conn.dialect.name == "sqlite":
        cur = raw.cursor()
    else:
        cur, sql = raw.cursor(name=f"gw_verify_{abs(hash(seg))}"), sql.replace("?", "%s")
    try:
        cur.execute(sql, (seg,))
        while chunk := cur.fetchmany(20_000):
            yield from chunk
    finally:
        cur.close()


def _diagnose(conn: sa.Connection, seg: str, broken: list[tuple[int, str, str, str]], report: VerifyReport) -> None:
    """Rows whose link to the row before them is broken: name the row they were chained after."""
    where = {
        r[0]: (int(r[1]), r[2], r[3])
        for r in conn.execute(sa.text("SELECT row_hash, seq, kind, ref FROM audit_chain WHERE segment = :seg"),
                              {"seg": seg})
    }  # fmt: skip
    for seq, kind, ref, prev in broken:
        after = where.get(prev)
        if after is not None:
            what = "decision" if after[1] == "d" else "review event"
            report.add(seg, seq, kind, ref, f"reordered: it was chained after seq {after[0]} ({what} {after[2]}), "
                       f"not after seq {seq - 1}")  # fmt: skip
        else:
            report.add(seg, seq, kind, ref, "the row it was chained after is gone: a row before it was deleted "
                       "or its chain row edited")  # fmt: skip


def _unchained(conn: sa.Connection, segments: set[str], report: VerifyReport) -> None:
    for (seg,) in conn.execute(sa.text("SELECT DISTINCT segment FROM audit_chain")):
        if seg not in segments:
            report.add(seg, None, None, None, "chain rows of a segment with no signed head: the head was deleted")
    # Every chained row that was found is distinct (decision_id is the key; seq orders the chain),
    # so equal counts leave no row outside the chain; only otherwise is each one looked for.
    n_d = conn.execute(sa.text("SELECT count(*) FROM decisions")).scalar_one()
    n_e = conn.execute(sa.text("SELECT count(*) FROM review_events")).scalar_one()
    if n_d == report.found["d"] and n_e == report.found["e"]:
        return
    for (ref,) in conn.execute(sa.text(
        "SELECT d.decision_id FROM decisions d WHERE NOT EXISTS "
        "(SELECT 1 FROM audit_chain c WHERE c.kind = 'd' AND c.ref = d.decision_id) LIMIT 100"
    )):  # fmt: skip
        report.add(None, None, "d", ref, "not in the chain: inserted outside geowarden")
    for (ref,) in conn.execute(sa.text(
        "SELECT CAST(e.id AS VARCHAR(40)) FROM review_events e WHERE NOT EXISTS "
        "(SELECT 1 FROM audit_chain c WHERE c.kind = 'e' AND c.ref = CAST(e.id AS VARCHAR(40))) LIMIT 100"
    )):  # fmt: skip
        report.add(None, None, "e", ref, "not in the chain: inserted outside geowarden")
