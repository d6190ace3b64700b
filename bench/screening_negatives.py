"""Unlisted names for ``eval_screening.py``: three families, each split into A (calibrate) and B (report).

Written before any result was looked at; the split holds out whole groups, never random rows:

- ``people``     personal names from Faker in 17 locales, as Faker writes them (native script,
                 honorifics and patronymics included). Half A and half B are different locales,
                 with each pair of related locales split across the halves (en_US | en_GB,
                 ru_RU | uk_UA, zh_CN | zh_TW, ar_AA | fa_IR ...), so B tests scripts and naming
                 customs the thresholds were never set on.
- ``companies``  well-known real companies: the constituents of 20 stock indices shipped by
                 ``pytickersymbols``. A company belongs to B when any B index holds it; B indices
                 are the NASDAQ 100, S&P 100 / 600, MDAX, SDAX, TecDAX, CAC Mid 60, IBEX 35,
                 BEL 20, OMX Stockholm 30 and EURO STOXX 50; A holds the rest (Dow Jones, S&P 500
                 outside those, DAX, CAC 40, FTSE 100, AEX, OMX Helsinki 25, SMI 20, Nikkei 225).
- ``asn``        organisation names of DB-IP's ASN Lite database (../shared/data/ip). There is no
                 group to hold out, so the halves are by a hash of the name.

A name is *not* a negative when it is genuinely listed: its normalised tokens equal a listed name
or alias (any family), or it is in :data:`LISTED_REAL` (a reviewed company, with the reason).
Every exclusion is counted and reported with its reason.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

LOCALES_A = ("en_US", "de_DE", "es_ES", "ru_RU", "zh_CN", "ja_JP", "ar_AA", "hi_IN", "vi_VN")
LOCALES_B = ("en_GB", "fr_FR", "pt_BR", "uk_UA", "zh_TW", "ko_KR", "fa_IR", "tr_TR")

INDICES_B = frozenset(
    {
        "NASDAQ 100",
        "S&P 100",
        "S&P 600",
        "MDAX",
        "SDAX",
        "TecDAX",
        "CAC Mid 60",
        "IBEX 35",
        "BEL 20",
        "OMX Stockholm 30",
        "EURO STOXX 50",
    }
)

#: Index constituents that are themselves on a list the index covers, so not negatives.
#: (Filled by review of each such name against the lists; the reason says what was found.)
LISTED_REAL: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Negative:
    name: str
    family: str  # people | companies | asn
    half: str  # "A" | "B"
    group: str  # locale, index, or "asn"


def people(per_locale: int, seed: int) -> list[Negative]:
    from faker import Faker  # noqa: PLC0415 - a bench-only dependency

    out: list[Negative] = []
    for half, locales in (("A", LOCALES_A), ("B", LOCALES_B)):
        for loc in locales:
            fake = Faker(loc)
            fake.seed_instance(seed)
            seen: set[str] = set()
            tries = 0
            while len(seen) < per_locale and tries < per_locale * 5:
                tries += 1
                seen.add(fake.name())
            out.extend(Negative(n, "people", half, loc) for n in sorted(seen))
    return out


def companies() -> list[Negative]:
    from pytickersymbols import PyTickerSymbols  # noqa: PLC0415 - a bench-only dependency

    pts = PyTickerSymbols()
    where: dict[str, set[str]] = {}
    for ix in pts.get_all_indices():
        for stock in pts.get_stocks_by_index(ix):
            name = str(stock.get("name") or "").strip()
            if name:
                where.setdefault(name, set()).add(ix)
    out: list[Negative] = []
    for name in sorted(where):
        b = sorted(where[name] & INDICES_B)
        half = "B" if b else "A"
        out.append(Negative(name, "companies", half, (b or sorted(where[name]))[0]))
    return out


def asn_orgs(mmdb: Path, n: int, seed: int) -> list[Negative]:
    import maxminddb  # noqa: PLC0415

    orgs: set[str] = set()
    with maxminddb.open_database(str(mmdb)) as reader:
        for _net, rec in reader:
            if isinstance(rec, dict):
                org = rec.get("autonomous_system_organization")
                if isinstance(org, str) and org.strip():
                    orgs.add(org.strip())
    picked = random.Random(seed).sample(sorted(orgs), min(n, len(orgs)))
    return [Negative(o, "asn", "A" if hashlib.sha1(o.encode()).digest()[0] % 2 else "B", "asn") for o in picked]


def exclude_listed(
    items: Iterable[Negative], listed_keys: set[tuple[str, ...]], key: Callable[[str], tuple[str, ...]]
) -> tuple[list[Negative], list[tuple[Negative, str]]]:
    """(kept, excluded with the reason): a name equal to a listed one after normalisation, or a
    reviewed listed company, is a true match, not a negative."""
    kept: list[Negative] = []
    dropped: list[tuple[Negative, str]] = []
    for neg in items:
        k = key(neg.name)
        if not k:
            dropped.append((neg, "nothing left after normalisation"))
        elif k in listed_keys:
            dropped.append((neg, "normalised name equals a listed name or alias"))
        elif neg.name in LISTED_REAL:
            dropped.append((neg, LISTED_REAL[neg.name]))
        else:
            kept.append(neg)
    return kept, dropped
