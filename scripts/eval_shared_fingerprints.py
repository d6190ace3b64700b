"""How far a peer's shared phone fingerprints reach, measured on simulated traffic.

The simulator has one provider, so a peer is played by half of its accounts: the accounts are
split in two halves by a hash of their id; the "peer" exports the phones (and payment
fingerprints) that two or more of its own accounts in one finding share
(``sharing.fingerprints.shared_values`` over ``analyze``'s findings, contacts of its half only),
hashed under a salt; then every account is checked against that list the way the live ``peer``
signal checks a request's phone (payment fingerprints the same way, offline: a request carries no
payment fingerprint). In-sample: the exporting half's own accounts; held out: the other half,
whose accounts the export never saw. Per persona: accounts, and the share whose phone (payment)
fingerprint is on the list. Nothing was tuned: the only rule (two members of one finding) is fixed.

Run::

    geowarden simulate --scenario analytics --events 200000 --seed 1 --out logs.parquet \\
        --labels labels.jsonl --accounts accounts.parquet
    geowarden analyze logs.parquet --accounts accounts.parquet --out analysis
    python scripts/eval_shared_fingerprints.py logs.parquet labels.jsonl accounts.parquet analysis/findings.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from geowarden.model import Facts
from geowarden.sharing.fingerprints import fingerprint, normalise, shared_values
from geowarden.sharing.stix import read_findings
from geowarden.signals.base import SignalContext
from geowarden.signals.peer import FingerprintSet, PeerSignal


def half(account: str) -> str:
    """``A`` (the exporting peer, in-sample) or ``B`` (held out), by a hash of the account id."""
    return "A" if hashlib.sha256(account.encode()).digest()[0] % 2 == 0 else "B"


def contacts_of(logs: Path, accounts: Path) -> dict[str, dict[str, str]]:
    """account -> {phone, payment}: the first phone an account's requests carry, its payment fingerprint."""
    out: dict[str, dict[str, str]] = defaultdict(dict)
    ev = pq.read_table(logs, columns=["account_id", "phone"])
    ev = ev.filter(pc.is_valid(ev["phone"]))
    for acc, ph in zip(ev["account_id"].to_pylist(), ev["phone"].to_pylist(), strict=True):
        out[acc].setdefault("phone", ph)
    ac = pq.read_table(accounts, columns=["account_id", "payment_fingerprint"]).to_pylist()
    for row in ac:
        if row["payment_fingerprint"]:
            out[row["account_id"]]["payment"] = row["payment_fingerprint"]
    return dict(out)


def evaluate(logs: Path, labels: Path, accounts: Path, findings: Path) -> dict[str, Any]:
    contacts = contacts_of(logs, accounts)
    persona = {}
    for line in labels.read_text().splitlines():
        d = json.loads(line)
        if d["kind"] == "account":
            persona[d["subject"]] = (d["persona"], bool(d["should_allow"]))
    salt = secrets.token_bytes(32)
    mine = {a: c for a, c in contacts.items() if half(a) == "A"}
    shared = shared_values(read_findings(findings), mine)
    listed = {fingerprint(salt, kind, value) for kind, value in shared}
    phones = {fingerprint(salt, k, v): {"peer": score} for (k, v), score in shared.items() if k == "phone"}
    live = PeerSignal([FingerprintSet(salt, phones)])  # what the live path does with an imported list
    ctx = SignalContext(None, frozenset())  # type: ignore[arg-type]  # the peer signal reads no intel
    table: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for account, (name, honest) in persona.items():
        c = table[name, half(account)]
        c["accounts"] += 1
        c["honest"] = int(honest)
        number = contacts.get(account, {}).get("phone")
        if number and live.evaluate(Facts(phone=number), ctx):
            c["phone"] += 1
        value = contacts.get(account, {}).get("payment")
        norm = normalise("payment", value) if value else None
        if norm is not None and fingerprint(salt, "payment", norm) in listed:
            c["payment"] += 1
    rows = []
    for name in sorted({n for n, _ in table}):
        a, b = table[name, "A"], table[name, "B"]
        rows.append(
            {
                "persona": name,
                "honest": bool(a["honest"] or b["honest"]),
                **{
                    f"{h}_{k}": (round(c[k] / c["accounts"], 4) if c["accounts"] else None)
                    for h, c in (("in_sample", a), ("held_out", b))
                    for k in ("phone", "payment")
                },
                "accounts_in_sample": a["accounts"],
                "accounts_held_out": b["accounts"],
            }
        )
    kinds = Counter(kind for kind, _ in shared)
    return {"exported": dict(kinds), "personas": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("logs", "labels", "accounts", "findings"):
        parser.add_argument(name, type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = evaluate(args.logs, args.labels, args.accounts, args.findings)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"exported fingerprints (from half A's findings members): {result['exported']}")
    head = f"{'persona':<22} {'honest':<6} {'accts A/B':>11}  {'phone A':>8} {'phone B':>8}  {'pay A':>8} {'pay B':>8}"
    print(head)
    print("-" * len(head))
    for r in result["personas"]:
        print(
            f"{r['persona']:<22} {r['honest']!s:<6} {r['accounts_in_sample']:>5}/{r['accounts_held_out']:<5}  "
            f"{_pct(r['in_sample_phone']):>8} {_pct(r['held_out_phone']):>8}  "
            f"{_pct(r['in_sample_payment']):>8} {_pct(r['held_out_payment']):>8}"
        )


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


if __name__ == "__main__":
    main()
