"""Evidence packages: every decision about an account, a key or one decision, signed, checkable
offline.

``geowarden audit export --account A | --key K | --decision D --out F`` writes one JSON file::

    {"body": {...}, "signature": "<Ed25519 over the canonical JSON of body>"}

The body holds, per decision: the audited record (action, score, reasons, rules, evidence,
facts, policy version), its review trail (reviewer verdicts and appeals) and its chain entries;
the text of each policy version involved when a policy file with that version was given (a
version is ``NAME-<first 12 hex of the file's SHA-256>``, so the text is checked against it);
the sources and dates of the intel snapshot in force at export; and the **chain proof**: for
each chained row, the chain rows from it to the next signed checkpoint or to its segment's
signed head, with those checkpoints and heads.

Personal data is minimised: the address, account and key ids (in the record and in its facts)
are replaced by keyed hashes (the audit key's HMAC, the same as the log uses for phone numbers
and e-mail addresses) and the text of an end user's appeal is withheld (its length is kept),
unless the package is made with ``include_pii`` (the CLI asks for an admin token). Offline,
:func:`verify_package` checks the signature against the key the verifier trusts, every proof up
to a signed checkpoint or head, and — when personal data is included — that each record still
hashes to its chained content hash. Without personal data the records are bound to their content
hashes by the package signature alone (same key).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from geowarden.audit.chain import (
    PublicKey,
    checkpoint_payload,
    decision_content,
    event_content,
    head_payload,
    row_hash,
)
from geowarden.audit.schema import decisions
from geowarden.audit.store import AuditLog
from geowarden.errors import ConfigError, InputError

FORMAT = "geowarden-evidence/1"
MAX_PACKAGE_BYTES = 512 * 1024 * 1024
IDENTIFIERS = ("ip", "account_id", "api_key_id")
_CHAIN_COLS = ("seq", "segment", "kind", "ref", "content_hash", "prev_hash", "row_hash")


def canonical(body: Any) -> str:
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def policy_texts(paths: Iterable[Path]) -> dict[str, str]:
    """{sha256 prefix as in a policy version: the file's text} for the policy files given."""
    out: dict[str, str] = {}
    for p in paths:
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read policy {p}: {exc.strerror or exc}") from None
        out[hashlib.sha256(raw).hexdigest()[:12]] = raw.decode("utf-8", errors="replace")
    return out


def build_package(
    audit: AuditLog,
    *,
    account: str | None = None,
    key: str | None = None,
    decision: str | None = None,
    include_pii: bool = False,
    policies: Mapping[str, str] | None = None,
    snapshot: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The signed package (``{"body", "signature"}``) of every decision matching the one selector."""
    chosen = [(n, v) for n, v in (("account", account), ("key", key), ("decision", decision)) if v is not None]
    if len(chosen) != 1:
        raise ConfigError("give exactly one of --account, --key, --decision")
    column = {"account": decisions.c.account_id, "key": decisions.c.api_key_id, "decision": decisions.c.decision_id}
    q = sa.select(decisions.c.decision_id).where(column[chosen[0][0]] == chosen[0][1]).order_by(decisions.c.ts)
    with audit.engine.connect() as conn:
        ids = list(conn.execute(q).scalars())
    records: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for did in ids:
        rec = audit.get(did)
        if rec is None:  # pruned in between
            continue
        row = rec.to_dict()
        events = audit.events(did)
        mine = _chain_entries(audit.engine, did, [str(e["id"]) for e in events])
        entries.extend(mine)
        records.append({"decision": row, "events": events, "chain": mine})
    proof = _proof(audit.engine, entries)
    versions = sorted({r["decision"]["policy_version"] for r in records})
    texts = policies or {}
    body: dict[str, Any] = {
        "format": FORMAT,
        "created_at": time.time(),
        "selector": {chosen[0][0]: chosen[0][1] if include_pii else audit.keyed_hash(chosen[0][1])},
        "include_pii": include_pii,
        "decisions": [r if include_pii else _minimised(audit, r) for r in records],
        "policies": {
            v: {"text": texts.get(v.rsplit("-", 1)[-1]), "text_matches_version": v.rsplit("-", 1)[-1] in texts}
            for v in versions
        },
        "snapshot_at_export": dict(snapshot) if snapshot is not None else None,
        "proof": proof,
        "public_key": audit.chain_key.public.hex,
        "key_id": audit.chain_key.public.key_id,
    }
    return {"body": body, "signature": audit.chain_key.sign(canonical(body))}


def _minimised(audit: AuditLog, rec: dict[str, Any]) -> dict[str, Any]:
    """The record with the address, account and key ids as keyed hashes, wherever they occur."""
    d = dict(rec["decision"])
    raw = {d[k]: audit.keyed_hash(str(d[k])) for k in IDENTIFIERS if d.get(k)}
    for k in IDENTIFIERS:
        if d.get(k):
            d[k] = raw[d[k]]
    facts = dict(d["facts"])
    for k in IDENTIFIERS:
        if facts.get(k):
            facts[k] = audit.keyed_hash(str(facts[k]))
    d["facts"] = facts
    text = json.dumps(d["evidence"], default=str)
    for value, hashed in raw.items():
        text = text.replace(json.dumps(str(value))[1:-1], hashed)
    d["evidence"] = json.loads(text)
    events = [
        dict(e, note=f"[withheld: {len(e['note'])} characters written by the end user]")
        if e["actor"] == "end-user" and e["note"]
        else e
        for e in rec["events"]
    ]
    return {"decision": d, "events": events, "chain": rec["chain"]}


def _chain_entries(engine: sa.Engine, did: str, event_ids: list[str]) -> list[dict[str, Any]]:
    q = sa.text(
        f"SELECT {', '.join(_CHAIN_COLS)} FROM audit_chain "  # noqa: S608
        "WHERE (kind = 'd' AND ref = :d) OR (kind = 'e' AND ref IN :e) ORDER BY seq"
    ).bindparams(sa.bindparam("e", expanding=True))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q, {"d": did, "e": event_ids or ["-"]})]


def _proof(engine: sa.Engine, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The chain rows from each entry to the next signed checkpoint or its segment's head."""
    rows: dict[int, dict[str, Any]] = {}
    segments = sorted({e["segment"] for e in entries})
    with engine.connect() as conn:
        heads = {
            r["segment"]: dict(r)
            for r in conn.execute(
                sa.text("SELECT * FROM audit_heads WHERE segment IN :s").bindparams(sa.bindparam("s", expanding=True)),
                {"s": segments or ["-"]},
            ).mappings()
        }
        cps: dict[int, dict[str, Any]] = {}
        for e in entries:
            seq, seg = int(e["seq"]), e["segment"]
            cp = conn.execute(
                sa.text("SELECT * FROM audit_checkpoints WHERE segment = :g AND seq >= :s ORDER BY seq LIMIT 1"),
                {"g": seg, "s": seq},
            ).mappings().first()  # fmt: skip
            end = int(cp["seq"]) if cp is not None else int(heads[seg]["last_seq"])
            if cp is not None:
                cps[int(cp["seq"])] = dict(cp)
            if all(s in rows for s in range(seq, end + 1)):
                continue
            for r in conn.execute(
                sa.text(f"SELECT {', '.join(_CHAIN_COLS)} FROM audit_chain WHERE seq BETWEEN :a AND :b ORDER BY seq"),  # noqa: S608
                {"a": seq, "b": end},
            ).mappings():
                rows[int(r["seq"])] = dict(r)
    return {
        "rows": [rows[s] for s in sorted(rows)],
        "checkpoints": [cps[s] for s in sorted(cps)],
        "heads": [heads[s] for s in segments],
    }


# -- offline verification ---------------------------------------------------------------------


def load_package(path: Path) -> dict[str, Any]:
    try:
        size = path.stat().st_size
        if size > MAX_PACKAGE_BYTES:
            raise InputError(f"{path}: {size:,} bytes, more than an evidence package may be ({MAX_PACKAGE_BYTES:,})")
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InputError(f"{path}: not an evidence package (not JSON: {str(exc)[:80]})") from None
    if not (isinstance(doc, dict) and isinstance(doc.get("body"), dict) and isinstance(doc.get("signature"), str)):
        raise InputError(f"{path}: not an evidence package (no body and signature)")
    if doc["body"].get("format") != FORMAT:
        raise InputError(f"{path}: not an evidence package of format {FORMAT}")
    return doc


def verify_package(path: Path, public: PublicKey) -> dict[str, Any]:
    """Check a package offline against the trusted ``public`` key: its signature, every chain
    proof, and (with personal data) every record against its content hash."""
    doc = load_package(path)
    body = doc["body"]
    problems: list[str] = []
    if body.get("key_id") != public.key_id:
        problems.append(f"the package names signing key {body.get('key_id')}, not the trusted {public.key_id}")
    if not public.verifies(canonical(body), doc["signature"]):
        problems.append("the package signature does not verify: the package was altered or signed by another key")
    try:
        checked = _check_proof(body, public, problems)
    except (KeyError, TypeError, ValueError) as exc:
        problems.append(f"the chain proof is malformed ({type(exc).__name__}: {str(exc)[:80]})")
        checked = 0
    return {
        "ok": not problems,
        "key_id": public.key_id,
        "decisions": len(body.get("decisions", [])),
        "rows": checked,
        "include_pii": bool(body.get("include_pii")),
        "problem_count": len(problems),
        "problems": [{"message": p} for p in problems],
    }


def _check_proof(body: dict[str, Any], public: PublicKey, problems: list[str]) -> int:
    proof = body["proof"]
    rows = {int(r["seq"]): r for r in proof["rows"]}
    heads = {h["segment"]: h for h in proof["heads"]}
    cps = {int(c["seq"]): c for c in proof["checkpoints"]}
    for h in heads.values():
        if not public.verifies(head_payload(h), h["signature"]):
            problems.append(f"segment {h['segment']}: the signed head does not verify")
    for c in cps.values():
        if not public.verifies(checkpoint_payload(c), c["signature"]):
            problems.append(f"segment {c['segment']}, seq {c['seq']}: the signed checkpoint does not verify")
    for seq, r in rows.items():
        if row_hash(r["prev_hash"], seq, r["segment"], r["kind"], r["ref"], r["content_hash"]) != r["row_hash"]:
            problems.append(f"segment {r['segment']}, seq {seq}: the chain row does not hash to its row_hash")
        nxt = rows.get(seq + 1)
        if nxt is not None and nxt["segment"] == r["segment"] and nxt["prev_hash"] != r["row_hash"]:
            problems.append(f"segment {r['segment']}, seq {seq + 1}: does not follow seq {seq}")
    checked = 0
    for rec in body["decisions"]:
        d = rec["decision"]
        by_ref = {(e["kind"], e["ref"]): e for e in rec["chain"]}
        entry = by_ref.get(("d", d["decision_id"]))
        if entry is None:
            problems.append(f"decision {d['decision_id']}: no chain entry")
            continue
        wanted = [("d", d["decision_id"], entry)] + [
            ("e", str(ev["id"]), by_ref.get(("e", str(ev["id"])))) for ev in rec["events"]
        ]
        for kind, ref, e in wanted:
            name = f"{'decision' if kind == 'd' else 'review event'} {ref}"
            if e is None:
                problems.append(f"{name}: no chain entry")
                continue
            if rows.get(int(e["seq"])) != e:
                problems.append(f"{name}: its chain entry is not in the proof")
                continue
            if body.get("include_pii"):
                content = decision_content(stored_form(d)) if kind == "d" else event_content(
                    next(ev for ev in rec["events"] if str(ev["id"]) == ref))  # fmt: skip
                if content != e["content_hash"]:
                    problems.append(f"{name}: the record does not match its chained content hash (edited)")
            if not _reaches_signature(int(e["seq"]), rows, cps, heads):
                problems.append(f"{name}: its chain does not reach a signed checkpoint or head")
            checked += 1
    return checked


def stored_form(d: Mapping[str, Any]) -> dict[str, Any]:
    """A decision record as its row was written: the JSON columns as the writer serialised them
    (``AuditLog.row_for``), so that it hashes as it did in the log."""
    return dict(
        d,
        reasons=json.dumps(d["reasons"]),
        rules=json.dumps(d["rules"]),
        facts=json.dumps(d["facts"], sort_keys=True),
        evidence=json.dumps(d["evidence"], default=str),
    )


def _reaches_signature(
    seq: int, rows: dict[int, dict[str, Any]], cps: dict[int, dict[str, Any]], heads: dict[str, dict[str, Any]]
) -> bool:
    seg = rows[seq]["segment"]
    while True:
        r = rows.get(seq)
        if r is None or r["segment"] != seg:
            return False
        cp = cps.get(seq)
        if cp is not None and cp["row_hash"] == r["row_hash"] and cp["segment"] == seg:
            return True
        head = heads.get(seg)
        if head is not None and int(head["last_seq"]) == seq and head["head_hash"] == r["row_hash"]:
            return True
        nxt = rows.get(seq + 1)
        if nxt is None or nxt["prev_hash"] != r["row_hash"]:
            return False
        seq += 1


def write_package(doc: Mapping[str, Any], out: Path) -> None:
    try:
        out.write_text(json.dumps(doc, ensure_ascii=False, indent=1, default=str) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from None
