"""The payment-card signal: where the card was issued, on which scheme, and the billing country.

- **Scheme** from the card's IIN prefix, by the public ranges the schemes publish
  (``data/card_schemes.yaml``, shipped: Visa 4, Mastercard 51-55 and 2221-2720, UnionPay 62,
  JCB 3528-3589, Mir 2200-2204, ...). Three schemes are *domestic* to restricted jurisdictions
  and hardly issued or accepted anywhere else: Mir (RU), Belkart (BY) and Shetab (IR, by its
  member banks' IINs). A card on one of them is ``CARD_SCHEME_RESTRICTED``. UnionPay is not:
  it is issued mostly in mainland China but also in Hong Kong, Macau, Singapore and dozens of
  other countries, and accepted worldwide; only the issuer table can place a UnionPay card.
- **Issuing country** from a BIN table the operator supplies: no BIN-to-country data with a
  licence that allows redistribution ships on PyPI (see docs/signals.md), so none ships here.
  ``BinTable.from_csv(path)`` reads one (binlist's ``ranges.csv`` columns, or simply
  ``bin,country``); ``GEOWARDEN_BIN_TABLE=path`` makes the configured signal load it
  (``CardSignal(table_path=...)``, once, at the first card seen).
- **Billing country**: the ``billing_country`` fact, when it is a restricted jurisdiction.
- **Mismatch** between the address's, the billing and the issuing country.

Only a BIN is ever accepted: 6 to 8 digits. A full card number (12 digits or more) given by
mistake is refused with ``InputError``, whose message never contains the digits; evidence shows
the first 6 digits only.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from geowarden.errors import InputError, SourceError
from geowarden.model import Evidence, Facts
from geowarden.signals.base import BaseSignal, Found, SignalContext, meanings

NAME = "card"

CODES: dict[str, tuple[str, str]] = {
    "CARD_ISSUER": (
        NAME,
        "What the card's BIN says: value {bin (first 6 digits), scheme, country (issuing country from the "
        "operator's BIN table, or the home of a domestic scheme; null when unknown)}; informational.",
    ),
    "CARD_ISSUER_RESTRICTED": (NAME, "The card was issued in a restricted jurisdiction (by the BIN table)."),
    "CARD_SCHEME_RESTRICTED": (
        NAME,
        "The card is on a domestic scheme of a restricted jurisdiction, hardly issued elsewhere (Mir: RU, "
        "Belkart: BY, Shetab: IR). UnionPay is not such a scheme.",
    ),
    "CARD_BILLING_RESTRICTED": (NAME, "The billing country given for the card is a restricted jurisdiction."),
    "CARD_COUNTRY_MISMATCH": (
        NAME,
        "The address's country, the billing country and the card's issuing country do not all agree; value "
        "names each known one. Weak alone: cards travel with their holders.",
    ),
    "CARD_INVALID": (NAME, "The card_bin fact is not a BIN (6 to 8 digits)."),
}

BIN_MIN, BIN_MAX = 6, 8
FULL_NUMBER_DIGITS: Final = 12  # this many digits or more is a card number, not a BIN
ISSUER_CONFIDENCE = 0.9
SCHEME_CONFIDENCE: Final[dict[str, float]] = {"mir": 0.9, "belkart": 0.9, "shetab": 0.95}
MISMATCH_CONFIDENCE = 0.3
SCHEMES_FILE = Path(__file__).with_name("data") / "card_schemes.yaml"
_MAX_RANGE = 100_000  # prefixes one table row may expand to


# -- the BIN itself --------------------------------------------------------------------------


def check_bin(text: str) -> str | None:
    """The BIN's digits (6 to 8), or None when ``text`` is not a BIN. A full card number (12 or
    more digits, with or without spaces) raises ``InputError``; the message has no digits."""
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) >= FULL_NUMBER_DIGITS:
        raise InputError("card_bin: a full card number was given; only the BIN (the first 6 to 8 digits) is accepted")
    stripped = text.strip().replace(" ", "").replace("-", "")
    if not (BIN_MIN <= len(stripped) <= BIN_MAX and stripped.isascii() and stripped.isdigit()):
        return None
    return stripped


# -- schemes (shipped) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scheme:
    name: str  # e.g. "mir"
    title: str
    country: str | None  # the home of a domestic scheme
    domestic: bool


class SchemeTable:
    """Longest-prefix match of IIN prefixes (1 to 8 digits) to schemes."""

    def __init__(self, prefixes: dict[str, Scheme]) -> None:
        self._prefixes = prefixes
        self._lengths = sorted({len(p) for p in prefixes}, reverse=True)

    @classmethod
    def load(cls, path: Path = SCHEMES_FILE) -> SchemeTable:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise SourceError(f"{path}: cannot read the card scheme table ({type(exc).__name__})") from None
        schemes = raw.get("schemes") if isinstance(raw, dict) else None
        if not isinstance(schemes, dict):
            raise SourceError(f"{path}: expected a mapping 'schemes'")
        prefixes: dict[str, Scheme] = {}
        for name, body in schemes.items():
            if not isinstance(body, dict) or not isinstance(body.get("prefixes"), list):
                raise SourceError(f"{path}: scheme {name!r} needs a list of prefixes")
            country = body.get("country")
            scheme = Scheme(str(name), str(body.get("title", name)), str(country) if country else None,
                            bool(body.get("domestic", False)))  # fmt: skip
            for spec in body["prefixes"]:
                for p in _expand(str(spec), where=f"{path}: scheme {name}"):
                    prefixes[p] = scheme
        return cls(prefixes)

    def names(self) -> list[str]:
        return sorted({s.name for s in self._prefixes.values()})

    def lookup(self, digits: str) -> Scheme | None:
        for n in self._lengths:
            if n <= len(digits):
                hit = self._prefixes.get(digits[:n])
                if hit is not None:
                    return hit
        return None


def _expand(spec: str, *, where: str) -> list[str]:
    lo, sep, hi = spec.partition("-")
    lo, hi = lo.strip(), (hi.strip() if sep else lo.strip())
    if not (lo.isdigit() and hi.isdigit() and len(lo) == len(hi) and int(lo) <= int(hi) and len(lo) <= BIN_MAX):
        raise SourceError(f"{where}: bad prefix or range {spec!r}")
    if int(hi) - int(lo) >= _MAX_RANGE:
        raise SourceError(f"{where}: range {spec!r} is too wide")
    return [str(i).zfill(len(lo)) for i in range(int(lo), int(hi) + 1)]


# -- issuing countries (operator-supplied) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class BinRecord:
    country: str  # ISO 3166-1 alpha-2
    scheme: str | None


_BIN_COLUMNS = ("iin_start", "bin", "iin")
_COUNTRY_COLUMNS = ("country", "country_code", "issuer_country", "alpha_2", "alpha2")


class BinTable:
    """BIN (6 to 8 digits, or ranges of them) to issuing country, from a CSV the operator gives.

    Columns, by header name: the BIN in ``iin_start``, ``bin`` or ``iin`` (6 to 8 digits); an
    optional ``iin_end`` (a range of equal-length BINs); the issuing country (ISO alpha-2) in
    ``country``, ``country_code``, ``issuer_country`` or ``alpha_2``; optionally ``scheme``.
    binlist's ``ranges.csv`` reads as it is. Rows without a usable BIN or country are skipped
    and counted (``skipped``). A 6-digit BIN also matches when every longer entry under it
    agrees on the country."""

    def __init__(self, entries: dict[str, BinRecord], *, source: str, skipped: int = 0) -> None:
        self._entries = entries
        self.source = source
        self.skipped = skipped
        implied: dict[str, BinRecord | None] = {}
        for key, rec in entries.items():
            if len(key) > BIN_MIN:
                six = key[:BIN_MIN]
                prev = implied.get(six, rec)
                implied[six] = rec if prev is not None and prev.country == rec.country else None
        self._implied = {k: v for k, v in implied.items() if v is not None and k not in entries}

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"BinTable({len(self._entries)} BINs from {self.source})"

    @classmethod
    def from_csv(cls, path: str | Path) -> BinTable:
        p = Path(path)
        try:
            with p.open(encoding="utf-8-sig", newline="") as fh:
                return cls._from_rows(csv.DictReader(fh), source=p.name, where=str(p))
        except OSError as exc:
            raise SourceError(f"{p}: cannot read the BIN table ({exc.strerror or type(exc).__name__})") from None

    @classmethod
    def _from_rows(cls, reader: csv.DictReader[str], *, source: str, where: str) -> BinTable:
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        bin_col = next((c for c in _BIN_COLUMNS if c in header), None)
        cc_col = next((c for c in _COUNTRY_COLUMNS if c in header), None)
        if bin_col is None or cc_col is None:
            raise SourceError(
                f"{where}: a BIN table needs a BIN column ({', '.join(_BIN_COLUMNS)}) and a country column "
                f"({', '.join(_COUNTRY_COLUMNS)})"
            )
        entries: dict[str, BinRecord] = {}
        skipped = 0
        for raw in reader:
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if isinstance(v, str)}
            start, end, cc = row.get(bin_col, ""), row.get("iin_end", ""), row.get(cc_col, "").upper()
            if not (_is_bin(start) and len(cc) == 2 and cc.isascii() and cc.isalpha()):
                skipped += 1
                continue
            rec = BinRecord(cc, row.get("scheme") or None)
            if not end:
                entries[start] = rec
                continue
            if not (_is_bin(end) and len(end) == len(start) and int(start) <= int(end) <= int(start) + _MAX_RANGE):
                skipped += 1
                continue
            for i in range(int(start), int(end) + 1):
                entries[str(i).zfill(len(start))] = rec
        return cls(entries, source=source, skipped=skipped)

    def lookup(self, digits: str) -> BinRecord | None:
        for n in range(min(len(digits), BIN_MAX), BIN_MIN - 1, -1):
            hit = self._entries.get(digits[:n])
            if hit is not None:
                return hit
        return self._implied.get(digits[:BIN_MIN])


def _is_bin(text: str) -> bool:
    return BIN_MIN <= len(text) <= BIN_MAX and text.isascii() and text.isdigit()


# -- the signal ------------------------------------------------------------------------------


class CardSignal(BaseSignal):
    """The card signal with a BIN table (given, or read from ``table_path`` at the first card
    seen; none by default) and the scheme table, and its CEL variable ``card``: ``present``,
    ``valid``, ``country`` (issuing country, when the table or a domestic scheme knows it),
    ``scheme``, ``restricted`` (issued in a restricted jurisdiction), ``scheme_restricted`` (Mir,
    Belkart, Shetab), ``billing_restricted``, ``mismatch`` (address, billing and issuing
    countries differ). A table that does not load fails every card decision
    (``SIGNAL_UNAVAILABLE``) with the same one-line reason, without rereading the file."""

    name = NAME
    codes = meanings(CODES)
    variable = "card"
    hint_codes = frozenset({"CARD_ISSUER_RESTRICTED", "CARD_SCHEME_RESTRICTED", "CARD_BILLING_RESTRICTED"})

    def __init__(
        self, table: BinTable | None = None, schemes: SchemeTable | None = None, *, table_path: Path | None = None
    ) -> None:
        self._table: BinTable | SourceError | None = table
        self._path = table_path if table is None else None
        self._schemes = schemes
        self._lock = threading.Lock()

    @property
    def table(self) -> BinTable | None:
        if self._path is not None:
            with self._lock:
                if self._path is not None:
                    try:
                        self._table = BinTable.from_csv(self._path.expanduser())
                    except SourceError as exc:
                        self._table = exc
                    self._path = None
        if isinstance(self._table, SourceError):
            raise SourceError(self._table.message)
        return self._table

    def evaluate(self, facts: Facts, ctx: SignalContext) -> list[Evidence]:
        if facts.card_bin is None and facts.billing_country is None:
            return []
        return _evidence(facts, ctx, self.table, self._schemes or default_schemes())

    def export(self, found: Found, facts: Facts) -> dict[str, Any]:
        codes = found.codes
        issuer = found.mapping("CARD_ISSUER")
        return {
            "present": facts.card_bin is not None,
            "valid": "CARD_ISSUER" in codes,
            "country": _text(issuer.get("country")),
            "scheme": _text(issuer.get("scheme")),
            "restricted": "CARD_ISSUER_RESTRICTED" in codes,
            "scheme_restricted": "CARD_SCHEME_RESTRICTED" in codes,
            "billing_restricted": "CARD_BILLING_RESTRICTED" in codes,
            "mismatch": "CARD_COUNTRY_MISMATCH" in codes,
        }


def evaluate(facts: Facts, ctx: SignalContext) -> list[Evidence]:
    """Evidence about ``facts.card_bin`` and ``facts.billing_country`` with the shipped schemes
    and no BIN table (configure one with ``CardSignal``)."""
    return SIGNAL.evaluate(facts, ctx)


_SCHEMES: list[SchemeTable] = []
_LOAD_LOCK = threading.Lock()


def default_schemes() -> SchemeTable:
    """The shipped scheme table (read once)."""
    if not _SCHEMES:
        with _LOAD_LOCK:
            if not _SCHEMES:
                _SCHEMES.append(SchemeTable.load())
    return _SCHEMES[0]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _evidence(facts: Facts, ctx: SignalContext, table: BinTable | None, schemes: SchemeTable) -> list[Evidence]:
    if facts.card_bin is None and facts.billing_country is None:
        return []
    out: list[Evidence] = []
    restricted = ctx.restricted
    billing = (facts.billing_country or "").strip().upper() or None
    if billing is not None and billing in restricted:
        out.append(
            Evidence(
                signal=NAME,
                code="CARD_BILLING_RESTRICTED",
                value=billing,
                confidence=1.0,
                detail=f"billing country {billing} is a restricted jurisdiction",
            )
        )
    issuer: str | None = None
    if facts.card_bin is not None:
        digits = check_bin(facts.card_bin)
        if digits is None:
            out.append(
                Evidence(
                    signal=NAME, code="CARD_INVALID", confidence=1.0, detail="the card_bin fact is not 6 to 8 digits"
                )
            )
        else:
            issuer = _card(digits, restricted, table, schemes, out)
    ip = ctx.ip_country
    known = {k: v for k, v in (("ip", ip), ("billing", billing), ("issuer", issuer)) if v}
    if len(set(known.values())) > 1:
        out.append(
            Evidence(
                signal=NAME,
                code="CARD_COUNTRY_MISMATCH",
                value=known,
                confidence=MISMATCH_CONFIDENCE,
                detail="countries disagree: " + ", ".join(f"{k} {v}" for k, v in known.items()),
            )
        )
    return out


def _card(
    digits: str, restricted: Set[str], table: BinTable | None, schemes: SchemeTable, out: list[Evidence]
) -> str | None:
    """Append the evidence about one BIN; returns the issuing country when known."""
    bin6 = digits[:BIN_MIN]
    scheme = schemes.lookup(digits)
    rec = table.lookup(digits) if table is not None else None
    country = rec.country if rec is not None else (scheme.country if scheme is not None and scheme.domestic else None)
    scheme_name = scheme.name if scheme is not None else (rec.scheme.lower() if rec and rec.scheme else None)
    value: dict[str, Any] = {"bin": bin6, "scheme": scheme_name, "country": country}
    said = f"BIN {bin6}: {scheme.title if scheme else scheme_name or 'unknown scheme'}"
    out.append(
        Evidence(
            signal=NAME,
            code="CARD_ISSUER",
            value=value,
            confidence=1.0,
            detail=said + (f", issued in {country}" if country else ", issuing country unknown"),
            source=table.source if rec is not None and table is not None else None,
        )
    )
    if rec is not None and rec.country in restricted:
        out.append(
            Evidence(
                signal=NAME,
                code="CARD_ISSUER_RESTRICTED",
                value=rec.country,
                confidence=ISSUER_CONFIDENCE,
                detail=f"BIN {bin6} was issued in restricted jurisdiction {rec.country}",
                source=table.source if table is not None else None,
            )
        )
    if scheme is not None and scheme.domestic and scheme.country in restricted:
        out.append(
            Evidence(
                signal=NAME,
                code="CARD_SCHEME_RESTRICTED",
                value=scheme.name,
                confidence=SCHEME_CONFIDENCE.get(scheme.name, 0.8),
                detail=f"BIN {bin6} is a {scheme.title} card, a scheme domestic to {scheme.country}",
            )
        )
    return country


SIGNAL = CardSignal()
