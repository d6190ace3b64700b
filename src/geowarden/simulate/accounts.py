"""The accounts table: one row per account, what a provider knows from signup and billing.

=======================  ===========================================================
``account_id``           as in the logs
``created``              epoch milliseconds, before the account's first request
``payment_fingerprint``  16 hex characters: one per card (an opaque hash, never the number)
``phone_hash``           16 hex characters of a keyed BLAKE2b of the phone line, or null
``email_domain``         the domain of the sign-up e-mail, or null
``organisation``         the organisation the account declared, or null
``declared_country``     the country the account declared (its billing country)
=======================  ===========================================================

Honest accounts mostly have their own card and phone: families share a card (some a phone),
colleagues share the organisation, the e-mail domain and sometimes the corporate card.
Planted networks share cards, reused virtual numbers, devices and are created in bursts.

The simulator's phone numbers vary only in their last four digits, so two unrelated accounts
may show the same number in the events' ``phone`` column; ``phone_hash`` hashes the number
with the line it belongs to, so only accounts that really share a line share a hash.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from geowarden.simulate.prompts import U64Array, hex_strings, random64
from geowarden.simulate.timeline import DAY_MS, HOUR_MS

if TYPE_CHECKING:
    from geowarden.simulate.personas import Persona

IntArray = npt.NDArray[np.int64]
COLUMNS = (
    "account_id", "created", "payment_fingerprint", "phone_hash", "email_domain", "organisation", "declared_country",
)  # fmt: skip
_PHONE_KEY = b"geowarden-simulate"


@dataclass(slots=True)
class AccountFacts:
    """The accounts of one block (the phone, e-mail and country lists are the block's pools)."""

    ids: list[str]
    created: IntArray
    payment: U64Array
    phone_line: U64Array  # who holds the number: equal for accounts sharing a line
    phones: list[str | None]
    emails: list[str | None]
    organisation: list[str | None]
    declared: list[str | None]


@dataclass(slots=True)
class AccountTable:
    """Every block's accounts, concatenated; ``columns`` renders the table."""

    parts: list[AccountFacts] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(p.ids) for p in self.parts)

    def columns(self) -> dict[str, list[Any]]:
        cols: dict[str, list[Any]] = {c: [] for c in COLUMNS}
        for p in self.parts:
            cols["account_id"].extend(p.ids)
            cols["created"].extend(p.created.tolist())
            cols["payment_fingerprint"].extend(hex_strings(p.payment))
            cols["phone_hash"].extend(
                phone_hash(x, line) for x, line in zip(p.phones, p.phone_line.tolist(), strict=True)
            )
            cols["email_domain"].extend(x.rsplit("@", 1)[-1] if x else None for x in p.emails)
            cols["organisation"].extend(p.organisation)
            cols["declared_country"].extend(p.declared)
        return cols


def phone_hash(phone: str | None, line: int = 0) -> str | None:
    if not phone:
        return None
    return hashlib.blake2b(f"{phone}|{line:x}".encode(), digest_size=8, key=_PHONE_KEY).hexdigest()


def first_seen(ev_acc: IntArray, ts: IntArray, n_accounts: int, default: int) -> IntArray:
    """Each account's first request (``default`` for an account without one)."""
    first = np.full(n_accounts, default, dtype=np.int64)
    np.minimum.at(first, ev_acc, ts)
    return first


def accounts_on_card(payment: U64Array, created: IntArray, ev_acc: IntArray, ts: IntArray) -> IntArray:
    """Per event, how many accounts hold the event's account's card and were created at or before
    the event: what the provider's billing records say at request time (``payment_accounts``)."""
    _, card = np.unique(payment, return_inverse=True)
    order = np.lexsort((created, card))
    card_sorted, created_sorted = card[order], created[order]
    start = np.searchsorted(card_sorted, np.arange(card.max() + 1 if len(card) else 0), side="left")
    base = int(created.min()) if len(created) else 0
    span = np.int64(1) << np.int64(44)  # ~557 years of milliseconds: keys never collide across cards
    keys = card_sorted.astype(np.int64) * span + (created_sorted - base)
    ev_card = card[ev_acc]
    wanted = ev_card.astype(np.int64) * span + np.clip(ts.astype(np.int64) - base, -1, span - 1)
    out: IntArray = (np.searchsorted(keys, wanted, side="right") - start[ev_card]).astype(np.int64)
    return out


def created_times(p: Persona, first: IntArray, rng: np.random.Generator) -> IntArray:
    """Creation times: in ``created_bursts`` bursts (``burst_minutes`` wide, at most
    ``burst_age_days`` before the burst's first request), else spread over the years before the
    first request (``age_days`` on average; ``new_share`` sign up minutes to hours before it)."""
    n = len(first)
    if p.created_bursts > 0:
        width = p.burst_minutes * 60_000.0
        burst = rng.integers(0, p.created_bursts, size=n)
        anchor = np.full(p.created_bursts, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(anchor, burst, first)
        start = anchor - width - rng.uniform(0.02, 1.0, size=p.created_bursts) * p.burst_age_days * DAY_MS
        out: IntArray = (start[burst] + rng.uniform(0.0, width, size=n)).astype(np.int64)
        return out
    new = rng.random(n) < p.new_share
    age = np.where(
        new,
        rng.uniform(120_000.0, 6.0 * HOUR_MS, size=n),
        HOUR_MS + rng.exponential(p.age_days * DAY_MS, size=n),
    )
    created: IntArray = (first - age).astype(np.int64)
    return created


def share_identity(
    p: Persona, phones: list[str | None], bins: list[str | None], rng: np.random.Generator
) -> tuple[U64Array, U64Array]:
    """(payment fingerprint, phone line) per account, sharing cards and lines across
    ``shared_cards``, families and ``shared_phones`` as the persona says (``bins`` and
    ``phones`` are updated in place to match)."""
    n = len(phones)
    own = random64(rng, n)
    line = random64(rng, n)
    holder = np.arange(n)
    if p.shared_cards > 0:
        users = np.arange(n) if p.shared_card_share >= 1 else np.flatnonzero(rng.random(n) < p.shared_card_share)
        holder[users] = users[np.arange(len(users)) % p.shared_cards]
    if p.family_share > 0:
        members = rng.permutation(n)[: round(p.family_share * n)]
        sizes = rng.integers(2, 5, size=len(members) // 2 + 1)
        cuts = np.cumsum(sizes)
        for group in np.split(members, cuts[cuts < len(members)]):
            if len(group) < 2:
                continue
            head = int(group[0])
            holder[group] = holder[head]
            if rng.random() < 0.3:
                line[group] = line[head]
                for a in group.tolist():
                    phones[a] = phones[head]
    for a in np.flatnonzero(holder != np.arange(n)).tolist():
        bins[a] = bins[int(holder[a])]
    if p.shared_phones > 0:
        pool = [(phones[a], int(line[a])) for a in range(n) if phones[a] is not None][: p.shared_phones]
        if pool:
            pick = rng.integers(0, len(pool), size=n).tolist()
            for a in range(n):
                if phones[a] is not None:
                    phones[a], line[a] = pool[pick[a]]
    payment: U64Array = own[holder]
    return payment, line


def write_accounts(table: AccountTable, path: Path) -> None:
    """JSON Lines (``.jsonl``, ``.jsonl.gz``) or Parquet (``.parquet``)."""
    cols = table.columns()
    if path.suffix == ".parquet":
        import pyarrow as pa  # noqa: PLC0415 - optional dependency
        import pyarrow.parquet as pq  # noqa: PLC0415

        arrays = {c: pa.array(v, type=pa.int64() if c == "created" else pa.string()) for c, v in cols.items()}
        pq.write_table(pa.table(arrays), path, compression="snappy")
        return
    gz = path.suffix == ".gz"
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) if gz else path.open("w", encoding="utf-8") as fh:
        for row in zip(*cols.values(), strict=True):
            fh.write(json.dumps(dict(zip(COLUMNS, row, strict=True))) + "\n")
