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

import bisect
import hashlib
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
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


_EXACT = sa.text(f"SELECT {', '.join(DECISION_HASHED)} FROM decisions WHERE decision_id = :ref")  # noqa: S608
#: A review event by id. Events are few; one lookup each costs less than joining them to a piece
#: (SQLite scanned every event for each chained one: 10 s over 10 M rows).
_EVENT = sa.text(f"SELECT {', '.join(EVENT_HASHED)} FROM review_events WHERE id = :id")  # noqa: S608
_PIECE_CHECKPOINTS = sa.text(
    "SELECT seq, row_hash, signature FROM audit_checkpoints WHERE segment = :seg AND seq >= :lo AND seq <= :hi"
)
_ROW_BEFORE = sa.text(
    "SELECT seq, row_hash FROM audit_chain WHERE segment = :seg AND seq < :lo ORDER BY seq DESC LIMIT 1"
)

PARALLEL_ROWS = 500_000  # below this many rows, worker processes (about 1 s to start) cost more than they save
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
    bounds = {"seg": seg, "lo": lo, "hi": hi}
    cps = {int(r.seq): r for r in conn.execute(_PIECE_CHECKPOINTS, bounds)}
    st = _Walk(seg, piece.report, conn, sorted(cps), *_start(conn, h, bounds))
    with pieces.chunks(conn, seg, lo, hi) as chunks:
        for chain, decs in chunks:
            if not st.whole(chain, decs):
                st.row_by_row(chain, decs)
    report = piece.report
    report.rows += st.n
    report.found["d"] += st.n - st.n_e - st.missing["d"]
    report.found["e"] += st.n_e - st.missing["e"]
    _checkpoints(seg, cps, st.at_cp, public, report)
    if st.broken:
        _diagnose(conn, seg, st.broken, report)
    n = st.n
    piece.n, piece.last_seq, piece.last_hash = n, (st.expect - 1 if n else None), (st.running if n else None)
    return piece


@dataclass(slots=True)
class _Walk:
    """Where the walk along a piece's chain is: the row hash it expects the next row to start
    from, the next seq, and what it found so far."""

    seg: str
    report: VerifyReport
    conn: sa.Connection
    cp_seqs: list[int]  # the signed checkpoints' seqs, in order
    running: str
    expect: int
    n: int = 0
    n_e: int = 0
    missing: dict[str, int] = field(default_factory=lambda: {"d": 0, "e": 0})
    broken: list[tuple[int, str, str, str]] = field(default_factory=list)
    at_cp: dict[int, tuple[str, str, str]] = field(default_factory=dict)  # seq -> (kind, ref, row_hash)

    def whole(self, chain: list[pieces.Row], decs: list[pieces.Row | None]) -> bool:
        """Check a chunk at once; False (and nothing recorded) when some row needs a closer look."""
        seqs, kinds, refs, hashes, prevs, stored = zip(*chain, strict=True)
        first, seg = self.expect, self.seg
        if seqs != tuple(range(first, first + len(seqs))) or prevs[1:] != stored[:-1] or prevs[0] != self.running:
            return False
        sha, q = hashlib.sha256, pieces.q
        n_e = kinds.count("e")
        rows: list[Any] = decs  # a None among them (a decision gone) raises TypeError
        want: Sequence[str] = hashes
        if n_e:
            rows = [d for k, d in zip(kinds, decs, strict=True) if k == "d"]
            want = [h for k, h in zip(kinds, hashes, strict=True) if k == "d"]
        try:
            content = [sha(f"[{q(a)},{b!r},{q(c)},{q(d)},{e!r},{q(f)},{g!r},{h[1:]}".encode()).hexdigest()
                       for a, b, c, d, e, f, g, h in rows]  # fmt: skip  # pieces.text, inline
            if n_e and [self._event(r) for k, r in zip(kinds, refs, strict=True) if k == "e"] != [
                h for k, h in zip(kinds, hashes, strict=True) if k == "e"
            ]:
                return False
        except TypeError:  # a decision or event gone, or a string column holding something else
            return False
        if content != list(want) or [sha(f"{p}|{s}|{seg}|{k}|{r}|{c}".encode()).hexdigest() for p, s, k, r, c in
                                     zip(prevs, seqs, kinds, refs, hashes, strict=True)] != list(stored):  # fmt: skip
            return False
        self._checkpointed(seqs, kinds, refs, stored)
        self.running, self.expect = stored[-1], seqs[-1] + 1
        self.n, self.n_e = self.n + len(seqs), self.n_e + n_e
        return True

    def _event(self, ref: str) -> str:
        content = self.event_content(ref)
        if content is None:
            raise TypeError(ref)  # gone: row by row names it
        return content

    def event_content(self, ref: str) -> str | None:
        """The content hash of review event ``ref`` (its id as text), None when it is gone."""
        if not (ref.isascii() and ref.isdigit()) or str(int(ref)) != ref:  # not an id's text: no event has it
            return None
        ev = self.conn.execute(_EVENT, {"id": int(ref)}).first()
        return None if ev is None else event_content(dict(zip(EVENT_HASHED, ev, strict=True)))

    def _checkpointed(self, seqs: tuple[int, ...], kinds: tuple[str, ...], refs: tuple[str, ...],
                      stored: tuple[str, ...]) -> None:  # fmt: skip
        first, last = seqs[0], seqs[-1]
        for seq in self.cp_seqs[bisect.bisect_left(self.cp_seqs, first) : bisect.bisect_right(self.cp_seqs, last)]:
            i = seq - first
            self.at_cp[seq] = (kinds[i], refs[i], stored[i])

    def row_by_row(self, chain: list[pieces.Row], decs: list[pieces.Row | None]) -> None:
        """Each row of a chunk on its own, every problem named."""
        report, seg, sha = self.report, self.seg, hashlib.sha256
        for (seq, kind, ref, content_hash, prev, stored), dec in zip(chain, decs, strict=True):
            if seq != self.expect:
                report.add(seg, self.expect, None, None,
                           f"seq {self.expect}..{seq - 1} missing from the chain: rows deleted")  # fmt: skip
            if kind == "d":
                content = None
                if dec is not None:
                    try:
                        content = _text_hash(dec)
                    except TypeError:  # a string column holding something else
                        content = None
                    if content != content_hash:
                        content = _exact(self.conn, ref)
            else:
                self.n_e += 1
                content = self.event_content(ref)
            if content is None:
                self.missing[kind] += 1
                report.add(seg, seq, kind, ref, "deleted: the chain holds it but the row is gone")
            elif content != content_hash:
                report.add(seg, seq, kind, ref, "edited: its content no longer matches its hash")
            if prev != self.running:
                self.broken.append((seq, kind, ref, prev))
            elif sha(f"{prev}|{seq}|{seg}|{kind}|{ref}|{content_hash}".encode()).hexdigest() != stored:  # row_hash()
                report.add(seg, seq, kind, ref, "the chain row itself was edited (its hash does not match its fields)")
            if seq in self.cp_seqs:
                self.at_cp[seq] = (kind, ref, stored)
            self.running, self.expect, self.n = stored, seq + 1, self.n + 1


def _text_hash(dec: tuple[Any, ...] | None) -> str:
    """SHA-256 of a decision's hashed text from its parts (:func:`.pieces.text`); ``TypeError``
    when the decision is gone (None) or a string column holds something else."""
    if dec is None:
        raise TypeError("no decision")
    return hashlib.sha256(pieces.text(*dec).encode()).hexdigest()


def _start(conn: sa.Connection, h: dict[str, Any], bounds: dict[str, Any]) -> tuple[str, int]:
    """The running hash and the expected seq at the start of a piece: the chain row before it."""
    before = conn.execute(_ROW_BEFORE, bounds).first() if bounds["lo"] > h["first_seq"] else None
    return (before[1], int(before[0]) + 1) if before is not None else (h["genesis"], h["first_seq"])


def _checkpoints(
    seg: str, cps: dict[int, Any], at_cp: dict[int, tuple[str, str, str]], public: PublicKey, report: VerifyReport
) -> None:
    """Each signed checkpoint of the piece against the row at its seq."""
    for seq, cp in sorted(cps.items()):
        row = at_cp.get(seq)
        if row is None:
            report.add(seg, seq, None, None, "a signed checkpoint names a row that is gone: rows deleted")
            continue
        kind, ref, stored = row
        payload = checkpoint_payload({"segment": seg, "seq": seq, "row_hash": cp.row_hash})
        if cp.row_hash != stored or not public.verifies(payload, cp.signature):
            report.add(seg, seq, kind, ref, "a signed checkpoint does not match this row")


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
