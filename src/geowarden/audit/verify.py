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

import hashlib
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from geowarden.audit import pieces
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


def _fields(pre: str) -> tuple[str, str, str]:
    """(prev_hash, ref, content_hash) of a row-hash input (``prev|seq|segment|kind|ref|content_hash``)."""
    head, _, content_hash = pre.rpartition("|")
    prev, _, rest = head.partition("|")
    return prev, rest.split("|", 3)[-1], content_hash


_EXACT = sa.text(f"SELECT {', '.join(DECISION_HASHED)} FROM decisions WHERE decision_id = :ref")  # noqa: S608
_PIECE_EVENTS = sa.text(
    f"SELECT CAST(e.id AS VARCHAR(40)), {', '.join('e.' + c for c in EVENT_HASHED)} FROM review_events e "  # noqa: S608
    "JOIN audit_chain c ON c.kind = 'e' AND c.ref = CAST(e.id AS VARCHAR(40)) "
    "WHERE c.segment = :seg AND c.seq >= :lo AND c.seq <= :hi"
)
_PIECE_CHECKPOINTS = sa.text(
    "SELECT seq, row_hash, signature FROM audit_checkpoints WHERE segment = :seg AND seq >= :lo AND seq <= :hi"
)
_ROW_BEFORE = sa.text(
    "SELECT seq, row_hash FROM audit_chain WHERE segment = :seg AND seq < :lo ORDER BY seq DESC LIMIT 1"
)

PARALLEL_ROWS = 200_000  # below this many rows, worker processes cost more than they save
PIECE_ROWS = 250_000  # a segment is verified in pieces of this many seq numbers, in parallel
_FAR = 2**62  # the open ends of a segment's first and last piece


@dataclass(slots=True)
class _Piece:
    """A run of one segment's seq numbers, verified on its own: its rows' problems in ``report``,
    and what the segment's end check needs (rows seen, the last seq and row hash seen)."""

    head: dict[str, Any]
    lo: int
    hi: int
    report: VerifyReport
    n: int = 0
    last_seq: int | None = None
    last_hash: str | None = None


def _pieces(h: dict[str, Any]) -> list[tuple[int, int]]:
    """``h``'s seq range cut into runs of :data:`PIECE_ROWS`; the first and last are open-ended,
    so rows outside the range the head names are read too."""
    cuts = list(range(int(h["first_seq"]), int(h["last_seq"]) + 1, max(1, PIECE_ROWS)))[1:]
    lows = [-_FAR, *cuts]
    highs = [c - 1 for c in cuts] + [_FAR]
    return list(zip(lows, highs, strict=True))


def verify_database(
    engine: sa.Engine,
    public: PublicKey,
    *,
    progress: Callable[[str], None] | None = None,
    workers: int | None = None,
) -> VerifyReport:
    """Verify the whole chain of ``engine``'s audit database against ``public``.

    Pieces of segments (:data:`PIECE_ROWS` seq numbers) are independent once the heads are
    checked, so with more than :data:`PARALLEL_ROWS` rows they are verified in ``workers``
    processes (default: one per CPU)."""
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
        jobs = [(h, lo, hi) for h in todo for lo, hi in _pieces(h)]
        workers = workers if workers is not None else os.cpu_count() or 1
        if workers > 1 and len(jobs) > 1 and sum(h["n"] for h in todo) > PARALLEL_ROWS:
            url = engine.url.render_as_string(hide_password=False)
            ctx = multiprocessing.get_context("spawn")  # the caller may have threads (the audit writer)
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
                futures = [pool.submit(_piece_job, url, public.raw, h, lo, hi) for h, lo, hi in jobs]
                pieces = (f.result() for f in futures)
                _combine(pieces, report, progress)
        else:
            _combine((_verify_piece(conn, h, lo, hi, public) for h, lo, hi in jobs), report, progress)
        if head_rows:
            last = head_rows[-1]
            report.head = {"segment": last["segment"], "last_seq": last["last_seq"], "head_hash": last["head_hash"]}
        _unchained(conn, {h["segment"] for h in head_rows}, report)
    return report


def _combine(pieces: Iterator[_Piece], report: VerifyReport, progress: Callable[[str], None] | None) -> None:
    """Merge the pieces (in seq order) and check each segment's end against its signed head."""
    seg_n, seg_last, seg_hash, current = 0, None, None, None
    for p in pieces:
        h = p.head
        if current is not None and h["segment"] != current["segment"]:
            _end_check(current, seg_n, seg_last, seg_hash, report, progress)
            seg_n, seg_last, seg_hash = 0, None, None
        current = h
        report.merge(p.report)
        if p.n:
            seg_n, seg_last, seg_hash = seg_n + p.n, p.last_seq, p.last_hash
    if current is not None:
        _end_check(current, seg_n, seg_last, seg_hash, report, progress)


def _end_check(
    h: dict[str, Any],
    n: int,
    last: int | None,
    running: str | None,
    report: VerifyReport,
    progress: Callable[[str], None] | None,
) -> None:
    if progress is not None:
        progress(f"segment {h['segment']}: {h['n']:,} rows")
    end = last if last is not None else h["first_seq"] - 1
    if (running if n else h["genesis"]) != h["head_hash"] or end != h["last_seq"] or n != h["n"]:
        report.add(h["segment"], end if n else None, None, None,
                   f"the chain ends at seq {end} with {n:,} rows but the signed head says seq {h['last_seq']} "
                   f"with {h['n']:,}: rows at the end deleted or added")  # fmt: skip


_ENGINES: dict[str, sa.Engine] = {}  # a worker process's engine, reused by its pieces


def _piece_job(url: str, public_raw: bytes, head: dict[str, Any], lo: int, hi: int) -> _Piece:
    """One piece verified in a worker process."""
    engine = _ENGINES.get(url)
    if engine is None:
        engine = _ENGINES[url] = sa.create_engine(url, poolclass=sa.pool.StaticPool)
    with engine.connect() as conn:
        return _verify_piece(conn, head, lo, hi, PublicKey(public_raw))


def _verify_piece(conn: sa.Connection, h: dict[str, Any], lo: int, hi: int, public: PublicKey) -> _Piece:
    """The rows of segment ``h`` with seq in ``[lo, hi]``, in seq order, as if the whole segment
    were read in one pass: the state before ``lo`` is taken from the chain row before it."""
    seg = h["segment"]
    piece = _Piece(h, lo, hi, VerifyReport(key_id=public.key_id))
    report = piece.report
    bounds = {"seg": seg, "lo": lo, "hi": hi}
    events = {r[0]: r[1:] for r in conn.execute(_PIECE_EVENTS, bounds)}
    cps = {int(r.seq): r for r in conn.execute(_PIECE_CHECKPOINTS, bounds)}
    at_cp: dict[int, tuple[str, str, str]] = {}  # seq -> (kind, row-hash input, row_hash) of checkpointed rows
    cp_next = iter(sorted(cps))
    cp_seq = next(cp_next, None)
    running, expect = _start(conn, h, bounds)
    n, n_e, broken, missing = 0, 0, [], {"d": 0, "e": 0}
    sha, q = hashlib.sha256, pieces.q
    link = running + "|"
    with pieces.rows(conn, seg, lo, hi) as rows:
        for seq, kind, pre, stored, did, ts, dkind, action, score, policy, elapsed, last in rows:
            if seq != expect:
                report.add(seg, expect, None, None, f"seq {expect}..{seq - 1} missing from the chain: rows deleted")
            content_hash = pre[pre.rindex("|") + 1 :]
            if kind == "d":
                if ts is None:
                    content = None
                else:
                    try:  # pieces.text, inline
                        content = sha(f"[{q(did)},{ts!r},{q(dkind)},{q(action)},{score!r},{q(policy)},{elapsed!r},"
                                      f"{last[1:]}".encode()).hexdigest()  # fmt: skip
                    except TypeError:  # a string column holding something else
                        content = None
                    if content != content_hash:
                        content = _exact(conn, _fields(pre)[1])
            else:
                n_e += 1
                ev = events.get(_fields(pre)[1])
                content = event_content(dict(zip(EVENT_HASHED, ev, strict=True))) if ev is not None else None
            if content != content_hash:
                _content_problem(report, seg, seq, kind, pre, content, missing)
            if not pre.startswith(link):
                prev, ref, _ = _fields(pre)
                broken.append((seq, kind, ref, prev))
            elif sha(pre.encode()).hexdigest() != stored:  # row_hash()
                report.add(seg, seq, kind, _fields(pre)[1], "the chain row itself was edited (its hash does not "
                           "match its fields)")  # fmt: skip
            if seq == cp_seq:
                at_cp[seq] = (kind, pre, stored)
                cp_seq = next(cp_next, None)
            running, link, expect, n = stored, stored + "|", seq + 1, n + 1
    report.rows += n
    report.found["d"] += n - n_e - missing["d"]
    report.found["e"] += n_e - missing["e"]
    _checkpoints(seg, cps, at_cp, public, report)
    if broken:
        _diagnose(conn, seg, broken, report)
    piece.n, piece.last_seq, piece.last_hash = n, (expect - 1 if n else None), (running if n else None)
    return piece


def _start(conn: sa.Connection, h: dict[str, Any], bounds: dict[str, Any]) -> tuple[str, int]:
    """The running hash and the expected seq at the start of a piece: the chain row before it."""
    before = conn.execute(_ROW_BEFORE, bounds).first() if bounds["lo"] > h["first_seq"] else None
    return (before[1], int(before[0]) + 1) if before is not None else (h["genesis"], h["first_seq"])


def _content_problem(
    report: VerifyReport, seg: str, seq: int, kind: str, pre: str, content: str | None, missing: dict[str, int]
) -> None:
    ref = _fields(pre)[1]
    if content is None:
        missing[kind] += 1
        report.add(seg, seq, kind, ref, "deleted: the chain holds it but the row is gone")
    else:
        report.add(seg, seq, kind, ref, "edited: its content no longer matches its hash")


def _checkpoints(
    seg: str, cps: dict[int, Any], at_cp: dict[int, tuple[str, str, str]], public: PublicKey, report: VerifyReport
) -> None:
    """Each signed checkpoint of the piece against the row at its seq."""
    for seq, cp in sorted(cps.items()):
        row = at_cp.get(seq)
        if row is None:
            report.add(seg, seq, None, None, "a signed checkpoint names a row that is gone: rows deleted")
            continue
        kind, pre, stored = row
        payload = checkpoint_payload({"segment": seg, "seq": seq, "row_hash": cp.row_hash})
        if cp.row_hash != stored or not public.verifies(payload, cp.signature):
            report.add(seg, seq, kind, _fields(pre)[1], "a signed checkpoint does not match this row")


def _exact(conn: sa.Connection, ref: str) -> str | None:
    """The content hash of decision ``ref`` computed from its values as the writer computed it."""
    values = conn.execute(_EXACT, {"ref": ref}).first()
    if values is None:
        return None
    try:
        return decision_content_of(tuple(values))
    except (TypeError, ValueError):  # a column edited to a value of another type (an ASN of "x")
        return ""  # no content hash is empty: the row is named edited


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
