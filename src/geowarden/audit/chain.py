"""The tamper-evident chain over the audit log: hashes, segments, signed heads.

Every audit row (a decision, or a review event: a reviewer's verdict, an appeal) gets one row in
``audit_chain``: its position ``seq`` (global, gap-free), its ``segment`` (a UTC day), the
SHA-256 of its content (``content_hash``), the ``row_hash`` of the row before it
(``prev_hash``) and its own ``row_hash`` = SHA-256 over (prev_hash, seq, segment, kind, ref,
content_hash). Each segment has one row in ``audit_heads``: its first and last seq, the number
of rows, the hash it starts from (``genesis``: the previous segment's head, so segments chain
too) and its ``head_hash``, signed with the log's Ed25519 key in the same transaction as the
rows it covers. Every 1,024 rows a signed ``audit_checkpoints`` row is kept, so that the proof
that one row belongs to the log (in an evidence package) is at most that many hashes long.

Only the chain's tables are new; ``decisions`` and ``review_events`` are hashed as they are.
The hashed content of a decision is every column but ``review`` (the current review state,
which changes; the events that change it are chained themselves); of a review event, every
column but its id. Columns added to those tables later are not covered until
:data:`DECISION_HASHED` / :data:`EVENT_HASHED` name them (and the schema version changes).

Writers serialise on the chain: SQLite by ``BEGIN IMMEDIATE``, PostgreSQL by locking
``audit_heads`` for the transaction, so several worker processes may share one log.
"""

from __future__ import annotations

import functools
import hashlib
import json
import json.encoder
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from geowarden.audit.schema import metadata

SCHEMA_VERSION = 2  # 1: decisions and review_events only; 2: with the chain
GENESIS = hashlib.sha256(b"geowarden-audit-genesis/1").hexdigest()
CHECKPOINT_EVERY = 1024

DECISION_HASHED = (
    "decision_id", "ts", "kind", "action", "score", "policy_version", "elapsed_us", "ip", "country", "asn",
    "account_id", "api_key_id", "reasons", "rules", "facts", "evidence",
)  # fmt: skip
EVENT_HASHED = ("decision_id", "ts", "actor", "event", "note")

chain = sa.Table(
    "audit_chain",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("segment", sa.String(16), nullable=False, index=True),  # YYYY-MM-DD (UTC), see append()
    sa.Column("kind", sa.String(1), nullable=False),  # d: decision, e: review event
    sa.Column("ref", sa.String(40), nullable=False, index=True),  # decision_id, or the event's id
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("row_hash", sa.String(64), nullable=False),
)
#: A segment's rows in seq order, read in pieces by ``audit verify`` (added in place on open,
#: see :func:`.migrate.prepare`).
CHAIN_SEGMENT_SEQ = sa.Index("ix_audit_chain_segment_seq", chain.c.segment, chain.c.seq)

heads = sa.Table(
    "audit_heads",
    metadata,
    sa.Column("segment", sa.String(16), primary_key=True),
    sa.Column("first_seq", sa.BigInteger, nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("genesis", sa.String(64), nullable=False),
    sa.Column("head_hash", sa.String(64), nullable=False),
    sa.Column("state", sa.String(8), nullable=False),  # open | pruned
    sa.Column("checkpoint_seq", sa.BigInteger, nullable=False),  # the last checkpoint's seq (0: none)
    sa.Column("signed_at", sa.Float, nullable=False),
    sa.Column("key_id", sa.String(16), nullable=False),
    sa.Column("signature", sa.String(128), nullable=False),
)

checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("segment", sa.String(16), nullable=False, index=True),
    sa.Column("row_hash", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(16), nullable=False),
    sa.Column("signature", sa.String(128), nullable=False),
)

meta = sa.Table(
    "audit_meta",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

CHAIN_TABLES = (chain, heads, checkpoints, meta)


# -- hashing ----------------------------------------------------------------------------------


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def decision_content(row: Mapping[str, Any]) -> str:
    """The SHA-256 of a decision row's hashed columns (floats as floats, the ASN as an integer)."""
    return decision_content_of(tuple(row[c] for c in DECISION_HASHED))


def _compact_encoder() -> Callable[[Any], str]:
    """``json.dumps(o, ensure_ascii=False, separators=(",", ":"))``, the same text, faster: the C
    encoder is built once (``JSONEncoder.encode`` builds one per call), without the circular
    reference check (the hashed values are flat lists)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    enc = make(None, None, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    return lambda o: "".join(enc(o, 0))


_encode = _compact_encoder()


def decision_content_of(v: Sequence[Any]) -> str:
    """:func:`decision_content` of the values of :data:`DECISION_HASHED`, in that order."""
    return hashlib.sha256(
        _encode(
            [
                v[0], float(v[1]), v[2], v[3], float(v[4]), v[5], float(v[6]), v[7], v[8],
                None if v[9] is None else int(v[9]), v[10], v[11], v[12], v[13], v[14], v[15],
            ]
        ).encode()
    ).hexdigest()  # fmt: skip


def event_content(row: Mapping[str, Any]) -> str:
    """The SHA-256 of a review event's hashed columns."""
    return _sha(_encode([row["decision_id"], float(row["ts"]), row["actor"], row["event"], row["note"]]))


def row_hash(prev_hash: str, seq: int, segment: str, kind: str, ref: str, content_hash: str) -> str:
    return _sha(f"{prev_hash}|{seq}|{segment}|{kind}|{ref}|{content_hash}")


def segment_of(ts: float) -> str:
    """The UTC day of ``ts`` (``YYYY-MM-DD``): a row's segment."""
    return _day_name(int(ts // 86400))


@functools.lru_cache(maxsize=64)
def _day_name(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")


def segment_end(segment: str) -> float:
    """Epoch seconds at the end of a segment's day (every row in it is older)."""
    return datetime.strptime(segment[:10], "%Y-%m-%d").replace(tzinfo=UTC).timestamp() + 86400.0


# -- signing ----------------------------------------------------------------------------------


class ChainKey:
    """The Ed25519 key that signs heads and checkpoints (and evidence packages)."""

    def __init__(self, seed: bytes) -> None:
        self._private = Ed25519PrivateKey.from_private_bytes(
            hashlib.sha256(b"geowarden-audit-signing|" + seed).digest()
        )
        self.public = PublicKey(self._private.public_key().public_bytes_raw())

    def __repr__(self) -> str:
        return f"ChainKey(key_id={self.public.key_id!r})"

    def sign(self, payload: str) -> str:
        return self._private.sign(payload.encode()).hex()


@dataclass(frozen=True, slots=True)
class PublicKey:
    """The public half: what a verifier needs, printable as hex (``geowarden audit key``)."""

    raw: bytes

    @classmethod
    def from_hex(cls, text: str) -> PublicKey:
        raw = bytes.fromhex(text.strip())
        if len(raw) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes (64 hex digits)")
        return cls(raw)

    @property
    def hex(self) -> str:
        return self.raw.hex()

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()[:16]

    def verifies(self, payload: str, signature: str) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(bytes.fromhex(signature), payload.encode())
        except (InvalidSignature, ValueError):
            return False
        return True


def head_payload(h: Mapping[str, Any]) -> str:
    return (
        f"geowarden-audit-head/1|{h['segment']}|{h['first_seq']}|{h['last_seq']}|{h['n']}|{h['genesis']}|"
        f"{h['head_hash']}|{h['state']}|{h['checkpoint_seq']}|{float(h['signed_at'])!r}"
    )


def checkpoint_payload(c: Mapping[str, Any]) -> str:
    return f"geowarden-audit-checkpoint/1|{c['segment']}|{c['seq']}|{c['row_hash']}"


# -- appending, inside the writer's transaction -----------------------------------------------


class RawTx:
    """One DB-API transaction on the audit database holding the chain's write lock.

    Raw DB-API rather than SQLAlchemy Core on the write path: executemany runs in the driver's C
    code (a Core insert of a few hundred rows holds the GIL for milliseconds)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.sqlite = engine.dialect.name == "sqlite"
        self.raw = engine.raw_connection()
        self.cur = self.raw.cursor()
        if self.sqlite:
            self.cur.execute("BEGIN IMMEDIATE")
        else:
            self.cur.execute("LOCK TABLE audit_heads IN EXCLUSIVE MODE")

    def sql(self, text: str) -> str:
        return text if self.sqlite else text.replace("?", "%s")

    def execute(self, text: str, params: Sequence[Any] = ()) -> Any:
        self.cur.execute(self.sql(text), tuple(params))
        return self.cur

    def executemany(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.cur.executemany(self.sql(text), rows)

    def insert_id(self, text: str, params: Sequence[Any]) -> int:
        """Insert one row and return its generated ``id``."""
        if self.sqlite:
            self.cur.execute(text, tuple(params))
            return int(self.cur.lastrowid)
        self.cur.execute(self.sql(text) + " RETURNING id", tuple(params))
        row = self.cur.fetchone()
        assert row is not None  # RETURNING of an INSERT that succeeded
        return int(row[0])

    def commit(self) -> None:
        self.raw.commit()

    def rollback(self) -> None:
        self.raw.rollback()

    def close(self) -> None:
        self.raw.close()


class ConnTx(RawTx):
    """The chain's write access inside a transaction a caller already holds (a SQLAlchemy
    ``Connection`` in ``engine.begin()``): the review book chains its events in the same
    transaction that changes the review state, so an event is chained exactly when it is kept.

    On PostgreSQL it takes the chain's lock (``audit_heads``) now; on SQLite the caller's first
    write already holds the database's single write lock. Never commits: the caller's block does."""

    def __init__(self, conn: sa.Connection) -> None:
        self.sqlite = conn.dialect.name == "sqlite"
        self.raw = conn.connection.dbapi_connection  # type: ignore[assignment]
        assert self.raw is not None
        self.cur = self.raw.cursor()
        if not self.sqlite:
            self.cur.execute("LOCK TABLE audit_heads IN EXCLUSIVE MODE")

    def commit(self) -> None:  # the caller's transaction commits
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        self.cur.close()


def chain_events(conn: sa.Connection, key: ChainKey, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert review events (``decision_id, ts, actor, event, note``) and chain them, in ``conn``'s
    transaction."""
    if not rows:
        return
    tx = ConnTx(conn)
    try:
        entries = []
        for row in rows:
            eid = tx.insert_id(
                "INSERT INTO review_events (decision_id, ts, actor, event, note) VALUES (?, ?, ?, ?, ?)",
                [row["decision_id"], row["ts"], row["actor"], row["event"], row["note"]],
            )
            entries.append(("e", str(eid), event_content(row), float(row["ts"])))
        append(tx, key, entries)
    finally:
        tx.close()


_HEAD_COLS = tuple(c.name for c in heads.columns)
_CHAIN_COLS = tuple(c.name for c in chain.columns)


def latest_head(tx: RawTx) -> dict[str, Any] | None:
    row = tx.execute(
        f"SELECT {', '.join(_HEAD_COLS)} FROM audit_heads ORDER BY segment DESC LIMIT 1"  # noqa: S608
    ).fetchone()
    return dict(zip(_HEAD_COLS, row, strict=True)) if row is not None else None


def append(
    tx: RawTx, key: ChainKey, entries: Sequence[tuple[str, str, str, float]], *, now: float | None = None
) -> None:
    """Chain ``entries`` — (kind, ref, content_hash, ts) in commit order — and sign the heads.

    A row's segment is the UTC day of its ``ts``, never earlier than the latest segment (a row
    stamped yesterday that commits after today's first row joins today's segment). A row for a
    day whose segment was already pruned (an import of old rows) starts a segment of that day
    marked ``+``, sorted after it."""
    if not entries:
        return
    head = latest_head(tx)
    signed_at = time.time() if now is None else now
    rows: list[tuple[Any, ...]] = []
    cps: list[tuple[Any, ...]] = []
    touched: dict[str, dict[str, Any]] = {}
    prev = head["head_hash"] if head else GENESIS
    seq = head["last_seq"] if head else 0
    cur = dict(head) if head else None
    for kind, ref, content, ts in entries:
        seg = segment_of(ts)
        if cur is not None and seg <= cur["segment"]:
            seg = cur["segment"] if cur["state"] == "open" else cur["segment"] + "+"
        if cur is None or seg != cur["segment"]:
            if cur is not None:
                touched[cur["segment"]] = cur
            cur = {
                "segment": seg, "first_seq": seq + 1, "last_seq": seq, "n": 0, "genesis": prev, "head_hash": prev,
                "state": "open", "checkpoint_seq": 0,
            }  # fmt: skip
        seq += 1
        h = row_hash(prev, seq, seg, kind, ref, content)
        rows.append((seq, seg, kind, ref, content, prev, h))
        cur["last_seq"], cur["n"], cur["head_hash"] = seq, cur["n"] + 1, h
        if seq - max(cur["checkpoint_seq"], cur["first_seq"] - 1) >= CHECKPOINT_EVERY:
            cur["checkpoint_seq"] = seq
            cp = {"segment": seg, "seq": seq, "row_hash": h}
            cps.append((seq, seg, h, key.public.key_id, key.sign(checkpoint_payload(cp))))
        prev = h
    assert cur is not None
    touched[cur["segment"]] = cur
    tx.executemany(
        f"INSERT INTO audit_chain ({', '.join(_CHAIN_COLS)}) VALUES ({', '.join('?' * len(_CHAIN_COLS))})",  # noqa: S608
        rows,
    )
    tx.executemany(
        "INSERT INTO audit_checkpoints (seq, segment, row_hash, key_id, signature) VALUES (?, ?, ?, ?, ?)", cps
    )
    for h_ in touched.values():
        write_head(tx, key, h_, signed_at=signed_at, exists=head is not None and h_["segment"] == head["segment"])


def write_head(tx: RawTx, key: ChainKey, head: dict[str, Any], *, signed_at: float, exists: bool) -> None:
    """Sign ``head`` and store it (insert, or update the segment's row when ``exists``)."""
    head = dict(head, signed_at=signed_at, key_id=key.public.key_id)
    head["signature"] = key.sign(head_payload(head))
    cols = [c for c in _HEAD_COLS if c != "segment"]
    if exists:
        tx.execute(
            f"UPDATE audit_heads SET {', '.join(c + ' = ?' for c in cols)} WHERE segment = ?",  # noqa: S608
            [head[c] for c in cols] + [head["segment"]],
        )
    else:
        tx.execute(
            f"INSERT INTO audit_heads ({', '.join(_HEAD_COLS)}) VALUES ({', '.join('?' * len(_HEAD_COLS))})",  # noqa: S608
            [head[c] for c in _HEAD_COLS],
        )


def prune_segments(engine: sa.Engine, key: ChainKey, cutoff: float) -> int:
    """Delete every open segment that ended at or before ``cutoff`` (epoch seconds), keeping its
    signed head; returns the number of decisions deleted. One transaction."""
    tx = RawTx(engine)
    deleted = 0
    try:
        open_heads = [
            dict(zip(_HEAD_COLS, row, strict=True))
            for row in tx.execute(
                f"SELECT {', '.join(_HEAD_COLS)} FROM audit_heads WHERE state = 'open' ORDER BY segment"  # noqa: S608
            ).fetchall()
        ]
        now = time.time()
        for head in open_heads:
            seg = head["segment"]
            if segment_end(seg) > cutoff:
                continue
            deleted += int(
                tx.execute(
                    "DELETE FROM decisions WHERE decision_id IN "
                    "(SELECT ref FROM audit_chain WHERE segment = ? AND kind = 'd')",
                    (seg,),
                ).rowcount
                or 0
            )
            tx.execute(
                "DELETE FROM review_events WHERE CAST(id AS VARCHAR(40)) IN "
                "(SELECT ref FROM audit_chain WHERE segment = ? AND kind = 'e')",
                (seg,),
            )
            tx.execute("DELETE FROM audit_chain WHERE segment = ?", (seg,))
            tx.execute("DELETE FROM audit_checkpoints WHERE segment = ?", (seg,))
            write_head(tx, key, dict(head, state="pruned"), signed_at=now, exists=True)
        tx.commit()
    except BaseException:
        tx.rollback()
        raise
    finally:
        tx.close()
    return deleted
