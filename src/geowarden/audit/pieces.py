"""How ``audit verify`` reads a piece of a segment: chain rows in seq order, each with its decision.

One row per chain row: ``(seq, kind, pre, row_hash, decision_id, ts, kind, action, score, policy_version,
elapsed_us, last)``.

- ``pre`` is the text :func:`.chain.row_hash` hashes (``prev|seq|segment|kind|ref|content_hash``),
  put together by the database.
- The last eight are the decision's hashed columns, the compact JSON array
  :func:`.chain.decision_content_of` hashes, in two kinds: the first seven as stored (an id, three
  floats, three short strings), which Python writes as ``json`` does (:func:`text`), and the other
  nine (the address, network, account, key, and the four JSON texts, the long part) as one JSON
  array the database writes (``json_array`` on SQLite, ``to_json`` on PostgreSQL: the same
  escapes as Python's ``json``, tested). A missing decision (or a review event's row) has ``ts``
  None (the column is NOT NULL).

Twelve values a row instead of twenty-two, and the long strings escaped by the database. The
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


_PRE = " || '|' || ".join(("c.prev_hash", "CAST(c.seq AS TEXT)", "c.segment", "c.kind", "c.ref", "c.content_hash"))
_WHERE = "WHERE c.segment = {0} AND c.seq >= {0} AND c.seq <= {0} ORDER BY c.seq"  # the (segment, seq) index
_JOINED = (
    f"SELECT c.seq, c.kind, {_PRE}, c.row_hash, {', '.join(_parts('postgresql'))} "  # noqa: S608
    "FROM audit_chain c LEFT JOIN decisions d ON c.kind = 'd' AND d.decision_id = c.ref " + _WHERE.format("%s")
)
_CHAIN = f"SELECT c.seq, c.kind, c.ref, {_PRE}, c.row_hash FROM audit_chain c " + _WHERE.format("?")  # noqa: S608
_DECISION = f"SELECT d.decision_id, {', '.join(_parts('sqlite'))} FROM decisions d "  # noqa: S608
_SCAN = _DECISION + "WHERE d.rowid >= ? ORDER BY d.rowid"
_ONE = _DECISION + "WHERE d.decision_id = ?"
_ROWID = "SELECT rowid FROM decisions WHERE decision_id = ?"
_NONE = (None,) * 8


@contextlib.contextmanager
def rows(conn: sa.Connection, seg: str, lo: int, hi: int) -> Iterator[Iterator[tuple[Any, ...]]]:
    """The rows of segment ``seg`` with seq in ``[lo, hi]``, in seq order, through the driver's
    own cursors (a server-side one on PostgreSQL)."""
    raw: Any = conn.connection.driver_connection
    if conn.dialect.name == "sqlite":
        chain_cur, scan_cur = raw.cursor(), raw.cursor()
        try:
            chain_cur.execute(_CHAIN, (seg, lo, hi))
            yield _merged(raw, chain_cur, scan_cur)
        finally:
            chain_cur.close()
            scan_cur.close()
        return
    cur = raw.cursor(name=f"gw_verify_{abs(hash((seg, lo)))}")
    cur.itersize = _FETCH
    try:
        cur.execute(_JOINED, (seg, lo, hi))
        yield iter(cur)
    finally:
        cur.close()


def _merged(raw: Any, chain_cur: Any, scan_cur: Any) -> Iterator[tuple[Any, ...]]:
    """Chain rows with their decisions, the decisions read in rowid order from the first one the
    piece names; read ahead (at most :data:`LOOKAHEAD`) or looked up by id when out of place."""
    scan: Iterator[tuple[Any, ...]] | None = None
    ahead: dict[str, tuple[Any, ...]] = {}  # decisions read while looking for another
    for seq, kind, ref, pre, stored in chain_cur:
        if kind != "d":
            yield (seq, kind, pre, stored, *_NONE)
            continue
        if scan is None:
            start = raw.execute(_ROWID, (ref,)).fetchone()
            if start is not None:
                scan = iter(scan_cur.execute(_SCAN, (start[0],)))
        found = ahead.pop(ref, None)
        if found is None and scan is not None:
            for _ in range(LOOKAHEAD):
                nxt = next(scan, None)
                if nxt is None or nxt[0] == ref:
                    found = nxt
                    break
                ahead[nxt[0]] = nxt
        if found is None:
            found = raw.execute(_ONE, (ref,)).fetchone()
        yield (seq, kind, pre, stored, *(_NONE if found is None else found[1:]))
