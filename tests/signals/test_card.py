from __future__ import annotations

import functools
import json
import re
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path

import pytest

from geowarden.errors import InputError, SourceError
from geowarden.model import Evidence
from geowarden.policy import default_restricted
from geowarden.signals import card
from geowarden.signals.card import BinTable, CardSignal
from geowarden.signals.codes import CODES
from geowarden.signals.registry import configure
from helpers import FIXTURES, facts, require_shared

RESTRICTED = frozenset(default_restricted())


@dataclass(frozen=True)
class Ctx:
    restricted: Set[str] = RESTRICTED
    ip_country: str | None = None


@pytest.fixture(scope="module")
def binlist() -> BinTable:
    """A small BIN table in binlist's layout, written for the tests (tests/fixtures/bins.csv)."""
    return BinTable.from_csv(FIXTURES / "bins.csv")


@functools.cache
def _shared_binlist() -> BinTable:
    __tracebackhide__ = True  # a skip names the test, not this line
    return BinTable.from_csv(require_shared() / "payment" / "binlist-ranges.csv")


def codes(ev: list[Evidence]) -> dict[str, Evidence]:
    return {e.code: e for e in ev}


# -- the BIN itself ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pan", ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "371449635398431", "622202000000"]
)
def test_a_full_card_number_is_refused_without_its_digits(pan: str) -> None:
    with pytest.raises(InputError) as exc:
        card.check_bin(pan)
    message = str(exc.value)
    assert not re.search(r"\d{2,}", message), "no digits of the number in the message"
    assert "full card number" in message
    with pytest.raises(InputError):
        card.evaluate(facts(card_bin=pan), Ctx())


@pytest.mark.parametrize(("text", "digits"), [("411111", "411111"), ("4111 11", "411111"), ("45717360", "45717360")])
def test_bins_accepted(text: str, digits: str) -> None:
    assert card.check_bin(text) == digits


FULL_WIDTH = "\uff14\uff11\uff11\uff11\uff11\uff11"  # digits, but not ASCII ones


@pytest.mark.parametrize("text", ["12345", "123456789", "41111a", "", FULL_WIDTH])
def test_not_a_bin(text: str) -> None:
    assert card.check_bin(text) is None
    ev = codes(card.evaluate(facts(card_bin=text), Ctx()))
    assert "CARD_INVALID" in ev and "CARD_ISSUER" not in ev


# -- schemes (shipped) ---------------------------------------------------------------------------

SCHEMES = [
    ("411111", "visa", None, False),
    ("510510", "mastercard", None, False),
    ("222100", "mastercard", None, False),
    ("272099", "mastercard", None, False),
    ("378282", "amex", None, False),
    ("601100", "discover", None, False),
    ("352800", "jcb", None, False),
    ("358999", "jcb", None, False),
    ("622202", "unionpay", None, False),  # UnionPay alone is not restricted: issued in many countries
    ("220000", "mir", "RU", True),
    ("220412", "mir", "RU", True),
    ("911234", "belkart", "BY", True),
    ("603799", "shetab", "IR", True),  # Bank Melli Iran
    ("621986", "shetab", "IR", True),  # Saman Bank: inside UnionPay's 62, the longer prefix wins
    ("610433", "shetab", "IR", True),  # Bank Mellat
    ("979200", "troy", None, False),
    ("999999", None, None, False),
]


@pytest.mark.parametrize(("bin_", "scheme", "country", "restricted"), SCHEMES)
def test_schemes(bin_: str, scheme: str | None, country: str | None, restricted: bool) -> None:
    ev = codes(card.evaluate(facts(card_bin=bin_), Ctx()))
    assert ev["CARD_ISSUER"].value == {"bin": bin_, "scheme": scheme, "country": country}
    assert ("CARD_SCHEME_RESTRICTED" in ev) == restricted
    assert "CARD_ISSUER_RESTRICTED" not in ev, "without a BIN table no issuing country is claimed"
    assert set(ev) <= set(CODES)


def test_scheme_restriction_follows_the_policy() -> None:
    ev = codes(card.evaluate(facts(card_bin="220000"), Ctx(restricted=frozenset({"CN"}))))
    assert "CARD_SCHEME_RESTRICTED" not in ev


def test_shipped_scheme_names() -> None:
    assert {"visa", "mastercard", "unionpay", "mir", "belkart", "shetab", "jcb", "amex"} <= set(
        card.default_schemes().names()
    )


# -- issuing country from a BIN table (a small one written for the tests) ------------------------

ISSUERS = [
    ("409666", "CN", "visa", True),  # Bank of China
    ("434691", "HK", "visa", True),  # China CITIC Bank International
    ("451187", "MO", "visa", True),  # Banco Nacional Ultramarino
    ("427938", "RU", "visa", True),  # Sberbank
    ("552114", "KP", "mastercard", True),
    ("341142", "US", "amex", False),
    ("414912", "DE", "visa", False),  # Frankfurter Sparkasse
    ("453450", "JP", "visa", False),  # Mitsubishi UFJ Nicos
    ("411911", "SG", "visa", False),  # DBS
    ("4571736012", None, None, False),  # 10 digits is neither a BIN nor a card number
]


@pytest.mark.parametrize(("bin_", "country", "scheme", "restricted"), ISSUERS)
def test_issuers_from_the_binlist_table(
    binlist: BinTable, bin_: str, country: str | None, scheme: str | None, restricted: bool
) -> None:
    ev = codes(CardSignal(binlist).evaluate(facts(card_bin=bin_), Ctx()))
    if country is None:
        assert "CARD_INVALID" in ev
        return
    assert ev["CARD_ISSUER"].value == {"bin": bin_[:6], "scheme": scheme, "country": country}
    assert ev["CARD_ISSUER"].source == "bins.csv"
    assert ("CARD_ISSUER_RESTRICTED" in ev) == restricted
    if restricted:
        assert ev["CARD_ISSUER_RESTRICTED"].value == country


def test_unknown_bins_and_countries_without_rows(binlist: BinTable) -> None:
    # binlist has no Kazakh or Iranian rows: the country stays unknown (Shetab still says IR)
    ev = codes(CardSignal(binlist).evaluate(facts(card_bin="440563"), Ctx(ip_country="KZ")))
    assert ev["CARD_ISSUER"].value["country"] is None
    assert "CARD_COUNTRY_MISMATCH" not in ev
    ev = codes(CardSignal(binlist).evaluate(facts(card_bin="603799"), Ctx()))
    assert ev["CARD_ISSUER"].value["country"] == "IR" and "CARD_SCHEME_RESTRICTED" in ev


def test_eight_digit_bins_ranges_and_implied_six(binlist: BinTable) -> None:
    assert binlist.lookup("45717360") == card.BinRecord("DK", "visa")
    assert binlist.lookup("45717365") == card.BinRecord("DK", "visa")  # inside 45717364-45717365
    assert binlist.lookup("371242") is not None  # end of the range 371241-371242
    # every 8-digit entry under 457173 says DK: a 6-digit BIN finds it too
    assert binlist.lookup("457173") == card.BinRecord("DK", "visa")
    assert binlist.lookup("457174") is None
    assert (len(binlist), binlist.skipped) == (16, 0)  # 13 rows, three of them two-BIN ranges


@pytest.mark.parametrize(("bin_", "country", "scheme"), [row[:3] for row in ISSUERS if row[1] is not None])
def test_the_shared_binlist_says_the_same(bin_: str, country: str, scheme: str) -> None:
    """The issuers above as the real binlist table has them (no licence stated: read, never shipped)."""
    table = _shared_binlist()
    assert len(table) > 5000
    assert table.lookup(bin_) == card.BinRecord(country, scheme)


def test_a_small_bin_csv(tmp_path: Path) -> None:
    p = tmp_path / "bins.csv"
    p.write_text(
        "bin,country,scheme\n"
        "62220200,CN,unionpay\n"
        "62220201,HK,unionpay\n"  # the 6-digit prefix is ambiguous now
        "440563,kz,visa\n"
        "999,DE,x\n"  # too short: skipped
        "411111,,visa\n"  # no country: skipped
    )
    t = BinTable.from_csv(p)
    assert t.skipped == 2
    assert t.lookup("62220200") == card.BinRecord("CN", "unionpay")
    assert t.lookup("622202") is None
    ev = codes(CardSignal(t).evaluate(facts(card_bin="62220200"), Ctx()))
    assert ev["CARD_ISSUER_RESTRICTED"].value == "CN"
    assert ev["CARD_ISSUER"].value == {"bin": "622202", "scheme": "unionpay", "country": "CN"}
    assert CardSignal(t).evaluate(facts(card_bin="440563"), Ctx())[0].value["country"] == "KZ"


def test_a_bin_csv_without_the_needed_columns(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("number,bank\n411111,x\n")
    with pytest.raises(SourceError, match="BIN column"):
        BinTable.from_csv(p)
    with pytest.raises(SourceError, match="cannot read"):
        BinTable.from_csv(tmp_path / "missing.csv")


def test_the_configured_signal_reads_its_bin_table_once(tmp_path: Path) -> None:
    p = tmp_path / "env-bins.csv"
    p.write_text("iin_start,country\n409666,CN\n")
    (sig,) = [s for s in configure(bin_table=p) if s.name == "card"]
    assert "CARD_ISSUER_RESTRICTED" in codes(sig.evaluate(facts(card_bin="409666"), Ctx()))
    p.unlink()  # loaded once: a later change of the file does not matter
    assert "CARD_ISSUER_RESTRICTED" in codes(sig.evaluate(facts(card_bin="409666"), Ctx()))
    (missing,) = [s for s in configure(bin_table=tmp_path / "nope.csv") if s.name == "card"]
    assert missing.evaluate(facts(), Ctx()) == [], "no card, no table needed"
    for _ in range(2):  # the same one-line reason on every card decision
        with pytest.raises(SourceError, match="cannot read the BIN table"):
            missing.evaluate(facts(card_bin="409666"), Ctx())
    assert "CARD_ISSUER_RESTRICTED" not in codes(card.evaluate(facts(card_bin="409666"), Ctx())), "no table by default"


# -- billing and mismatches ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("billing", "restricted"), [("IR", True), ("cn", True), ("RU", True), ("KP", True), ("DE", False), ("SG", False)]
)
def test_billing_country(billing: str, restricted: bool) -> None:
    ev = codes(card.evaluate(facts(billing_country=billing), Ctx()))
    assert ("CARD_BILLING_RESTRICTED" in ev) == restricted


def test_countries_that_disagree(binlist: BinTable) -> None:
    sig = CardSignal(binlist)
    ev = codes(sig.evaluate(facts(card_bin="409666", billing_country="US"), Ctx(ip_country="US")))
    assert ev["CARD_COUNTRY_MISMATCH"].value == {"ip": "US", "billing": "US", "issuer": "CN"}
    assert ev["CARD_COUNTRY_MISMATCH"].confidence <= 0.3
    ev = codes(sig.evaluate(facts(card_bin="414912", billing_country="DE"), Ctx(ip_country="DE")))
    assert "CARD_COUNTRY_MISMATCH" not in ev
    ev = codes(sig.evaluate(facts(billing_country="JP"), Ctx(ip_country="SG")))
    assert ev["CARD_COUNTRY_MISMATCH"].value == {"ip": "SG", "billing": "JP"}


def test_only_the_first_six_digits_are_shown(binlist: BinTable) -> None:
    ev = CardSignal(binlist).evaluate(facts(card_bin="45717360", billing_country="DE"), Ctx(ip_country="DE"))
    text = json.dumps([e.to_dict() for e in ev]) + repr(ev)
    assert "45717360" not in text and "457173" in text
