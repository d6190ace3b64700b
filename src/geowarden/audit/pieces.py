"""How ``audit verify`` reads a piece of a segment: chain rows in seq order, each with its decision.

Per chain row: ``(seq, kind, ref, content_hash, prev_hash, row_hash)`` and its decision, ``(decision_id, ts,
kind, action, score, policy_version, elapsed_us, last)`` or None (a review event's row, or a
decision that is gone), in chunks (:func:`chunks`).

- The decision's eight are its hashed columns, the compact JSON array
  :func:`.chain.decision_content_of` hashes, in two kinds: the first seven as stored (an id, three
  floats, three short strings), which Python writes as ``json`` does (:func:`text`), and the other
  nine (the address, network, account, key, and the four JSON texts, the long part) as one JSON
  array the database writes (``json_array`` on SQLite, ``to_json`` on PostgreSQL: the same
  escapes as Python's ``json``, tested).

Fourteen values a row instead of twenty-two, and the long strings escaped by the database. The
verifier hashes a decision again from its values exactly as the writer did before it calls it
edited, so this text can only save work, never change an answer.

On SQLite a decision is not looked up by its id per chain row: the ids are random, and a lookup
in a random place of a large index cost more than everything else. The writer inserts decisions
in the order it chains them, so the decisions are read in rowid order beside the chain and
matched by id (:func:`_merged`); one out of place (inserted behind geowarden's back, deleted,
moved by a VACUUM) is looked up by id on its own. PostgreSQL joins them itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from json.encoder import encode_basestring
from typing import Any

import sqlalchemy as sa

from geowarden.audit.chain import DECISION_HASHED

q = encode_basestring  # a str as a JSON string, as json.dumps(ensure_ascii=False) writes it

#: Decisions read ahead of the chain looking for the one a chain row names, before it is looked up.
LOOKAHEAD = 64
_FETCH = 20_000  # rows per round trip of PostgreSQL's server-side cursor


def _parts(dialect: str) -> tuple[str, ...]:
    """The eight decision expressions over ``d``: its first seven hashed columns as they are, and
    the other nine as one JSON array the database writes."""
    d = DECISION_HASHED
    if d[:7] != ("decision_id", "ts", "kind", "action", "score", "policy_version", "elapsed_us"):
        raise AssertionError("text() writes the first seven hashed columns itself")
    if dialect == "sqlite":
        last = f"json_array({', '.join(f'd.{c}' for c in d[7:])})"
    else:
        last = "'[' || " + " || ',' || ".join(f"coalesce(to_json(d.{c})::text, 'null')" for c in d[7:]) + " || ']'"
    return (*(f"d.{c}" for c in d[:7]), last)


def text(
    decision_id: str, ts: float, kind: str, action: str, score: float, policy: str, elapsed: float, last: str
) -> str:
    """The decision's hashed text from a row's parts (the verifier inlines the same f-string).
    Raises ``TypeError`` when a string column holds something else (the text is then not the
    writer's: the verifier hashes the row again from its values)."""
    return f"[{q(decision_id)},{ts!r},{q(kind)},{q(action)},{score!r},{q(policy)},{elapsed!r},{last[1:]}"


_WHERE = "WHERE c.segment = {0} AND c.seq >= {0} AND c.seq <= {0} ORDER BY c.seq"  # the (segment, seq) index
_CHAIN_COLS = "c.seq, c.kind, c.ref, c.content_hash, c.prev_hash, c.row_hash"
_JOINED = (
    f"SELECT {_CHAIN_COLS}, {', '.join(_parts('postgresql'))} "  # noqa: S608
    "FROM audit_chain c LEFT JOIN decisions d ON c.kind = 'd' AND d.decision_id = c.ref " + _WHERE.format("%s")
)
_CHAIN = f"SELECT {_CHAIN_COLS} FROM audit_chain c " + _WHERE.format("?")  # noqa: S608
_DECISION = f"SELECT {', '.join(_parts('sqlite'))} FROM decisions d "  # noqa: S608
_SCAN = _DECISION + "WHERE d.rowid >= ? ORDER BY d.rowid"
_ONE = _DECISION + "WHERE d.decision_id = ?"
_ROWID = "SELECT rowid FROM decisions WHERE decision_id = ?"

#: Chain rows per chunk: the verifier checks a chunk at once and row by row only when it finds a problem.
CHUNK = 4096

Row = tuple[Any, ...]  # (seq, kind, ref, content_hash, prev_hash, row_hash)
Chunk = tuple[list[Row], list[Row | None]]  # chain rows, and each one's decision (None: an event, or gone)


@contextlib.contextmanager
def chunks(conn: sa.Connection, seg: str, lo: int, hi: int) -> Iterator[Iterator[Chunk]]:
    """The rows of segment ``seg`` with seq in ``[lo, hi]``, in seq order, in chunks of
    :data:`CHUNK`, through the driver's own cursors (a server-side one on PostgreSQL)."""
    raw: Any = conn.connection.driver_connection
    if conn.dialect.name == "sqlite":
        chain_cur, scan_cur = raw.cursor(), raw.cursor()
        try:
            chain_cur.execute(_CHAIN, (seg, lo, hi))
            yield _Merge(raw, scan_cur).chunks(chain_cur)
        finally:
            chain_cur.close()
            scan_cur.close()
        return
    cur = raw.cursor(name=f"gw_verify_{abs(hash((seg, lo)))}")
    try:
        cur.execute(_JOINED, (seg, lo, hi))
        yield _joined(cur)
    finally:
        cur.close()


def _joined(cur: Any) -> Iterator[Chunk]:
    while rows := cur.fetchmany(CHUNK):
        yield [r[:6] for r in rows], [None if r[7] is None else r[6:] for r in rows]


class _Merge:
    """SQLite: decisions read in rowid order beside the chain, from the first one the piece
    names. A chunk whose decisions come in the chain's order is matched at once; otherwise each
    is taken from those read ahead, read on for (at most :data:`LOOKAHEAD` rows) or looked up by id."""

    def __init__(self, raw: Any, scan_cur: Any) -> None:
        self.raw, self.scan_cur = raw, scan_cur
        self.scan: Any = None
        self.ahead: dict[str, Row] = {}  # decisions read while looking for another

    def chunks(self, chain_cur: Any) -> Iterator[Chunk]:
        while chain := chain_cur.fetchmany(CHUNK):
            refs = [r[2] for r in chain if r[1] == "d"]
            if refs and self.scan is None:
                self._start(refs[0])
            got = self.scan.fetchmany(len(refs)) if self.scan is not None and refs else []
            if [g[0] for g in got] == refs:
                if len(refs) == len(chain):
                    yield chain, got
                else:
                    it = iter(got)
                    yield chain, [next(it) if r[1] == "d" else None for r in chain]
                continue
            self.ahead.update((g[0], g) for g in got)
            yield chain, [self._find(r[2]) if r[1] == "d" else None for r in chain]

    def _start(self, ref: str) -> None:
        start = self.raw.execute(_ROWID, (ref,)).fetchone()
        if start is not None:
            self.scan = self.scan_cur.execute(_SCAN, (start[0],))

    def _find(self, ref: str) -> Row | None:
        found = self.ahead.pop(ref, None)
        if found is None and self.scan is not None:
            for _ in range(LOOKAHEAD):
                nxt = self.scan.fetchone()
                if nxt is None or nxt[0] == ref:
                    found = nxt
                    break
                self.ahead[nxt[0]] = nxt
        if found is None:
            found = self.raw.execute(_ONE, (ref,)).fetchone()
        return found
