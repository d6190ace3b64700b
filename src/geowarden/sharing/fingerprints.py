"""Keyed fingerprints of phone numbers and payment instruments, shared with peers without sharing
the values: ``HMAC-SHA256(salt, "<kind>:<normalised value>")`` in hex, where the salt is a secret
the peers agreed on (``--salt-file``; at least 16 bytes; never logged, never in a bundle). A peer
without the salt can neither read a value back nor test a guess; one with it can only recognise a
value it already holds.

Normalised values: a phone number in E.164 (``+4915112345678``, as libphonenumber formats it; a
number that is not valid is not fingerprinted), a payment fingerprint (the processor's opaque card
fingerprint, as the accounts table holds it) stripped and lower-cased. A bundle names its salt only
by :func:`salt_id` (a hash of the salt, so the importer can tell that both sides use the same one).

Which values are shared (:func:`shared_values`): those held by two or more members (accounts) of
one analytics finding (an account cluster, a campaign): shared payment instruments and phones,
the links that made the finding. Findings carry only short hashes of them, so the values come from
the operator's own contacts table (``account_id`` with ``phone`` and/or ``payment_fingerprint``).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import hmac
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from geowarden.errors import ConfigError, InputError
from geowarden.signals import phone

KINDS = ("phone", "payment")
#: The contacts table's column for each kind.
COLUMNS = {"phone": "phone", "payment": "payment_fingerprint"}
MIN_SALT_BYTES = 16
MAX_SALT_BYTES = 4096
MAX_CONTACTS_BYTES = 1 << 30


def read_salt(path: Path) -> bytes:
    """The salt in ``path`` (its bytes, a trailing newline dropped). Messages never show it."""
    try:
        raw = path.read_bytes()[: MAX_SALT_BYTES + 2]
    except OSError as exc:
        raise ConfigError(f"cannot read the salt file {path}: {exc.strerror or exc}") from None
    salt = raw.rstrip(b"\r\n")
    if len(salt) < MIN_SALT_BYTES or len(salt) > MAX_SALT_BYTES:
        raise ConfigError(f"the salt file {path} must hold {MIN_SALT_BYTES} to {MAX_SALT_BYTES} bytes")
    return salt


def salt_id(salt: bytes) -> str:
    """A short name of the salt that reveals nothing of it (bundles carry this, never the salt)."""
    return hashlib.sha256(b"geowarden-salt-id\0" + salt).hexdigest()[:16]


def normalise(kind: str, value: str) -> str | None:
    """The value as both peers write it before hashing, None when it cannot be normalised."""
    if kind == "phone":
        info = phone.parse(value)
        return info.e164 if info.valid else None
    if kind == "payment":
        v = value.strip().lower()
        return v or None
    raise ValueError(f"unknown fingerprint kind {kind!r}")


def fingerprint(salt: bytes, kind: str, normalised: str) -> str:
    """HMAC-SHA256 of ``kind:normalised`` under the agreed salt, in hex."""
    return hmac.new(salt, f"{kind}:{normalised}".encode(), hashlib.sha256).hexdigest()


def read_contacts(path: Path) -> dict[str, dict[str, str]]:
    """``account_id -> {kind: value}`` from a CSV or JSON Lines table (``.gz`` too) with an
    ``account_id`` column and ``phone`` and/or ``payment_fingerprint``. A malformed table is refused
    in one line naming the file and line, never a value of it."""
    try:
        if path.stat().st_size > MAX_CONTACTS_BYTES:
            raise InputError(f"{path}: larger than a contacts table may be ({MAX_CONTACTS_BYTES:,} bytes)")
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, EOFError):
        raise InputError(f"{path}: not a text table (CSV or JSON Lines)") from None
    rows = _jsonl(path, text) if path.name.removesuffix(".gz").endswith((".jsonl", ".json")) else _csv(text)
    out: dict[str, dict[str, str]] = {}
    for i, row in enumerate(rows, 1):
        account = row.get("account_id")
        if not isinstance(account, str) or not account:
            raise InputError(f"{path}: row {i} has no account_id")
        got = {k: str(row[c]) for k, c in COLUMNS.items() if row.get(c) not in (None, "")}
        if got:
            out.setdefault(account, {}).update(got)
    return out


def _csv(text: str) -> Iterator[Mapping[str, Any]]:
    yield from csv.DictReader(io.StringIO(text))


def _jsonl(path: Path, text: str) -> Iterator[Mapping[str, Any]]:
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise InputError(f"{path}: line {i} is not JSON") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}: line {i} is not a JSON object")
        yield row


def shared_values(
    findings: Iterable[Mapping[str, Any]], contacts: Mapping[str, Mapping[str, str]]
) -> dict[tuple[str, str], float]:
    """``(kind, normalised value) -> the highest score`` of the findings in which two or more
    members hold that value (the shared instruments that linked them)."""
    out: dict[tuple[str, str], float] = {}
    for f in findings:
        members = [m for m in f.get("members") or [] if isinstance(m, str)]
        if len(members) < 2:
            continue
        held: dict[tuple[str, str], int] = {}
        for m in set(members):
            for kind, value in (contacts.get(m) or {}).items():
                norm = normalise(kind, value)
                if norm is not None:
                    held[kind, norm] = held.get((kind, norm), 0) + 1
        score = float(f.get("score") or 0.0)
        for key, n in held.items():
            if n >= 2:
                out[key] = max(out.get(key, 0.0), score)
    return out
