# ruff: noqa: RUF001 - names in other scripts are the point
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geowarden.errors import SourceError
from geowarden.model import Facts
from geowarden.screening import cli
from geowarden.screening.match import NameIndex
from geowarden.signals.screening import CODES, evaluate, parse_owner
from helpers import FIXTURES


@dataclass
class Ctx:
    restricted: frozenset[str] = frozenset({"RU", "CN", "IR", "KP"})


def codes(ev: list) -> list[str]:  # type: ignore[type-arg]
    return [e.code for e in ev]


def test_listed_org(index: NameIndex) -> None:
    ev = evaluate(Facts(org_name="Banco Nacional de Cuba S.A."), Ctx(), index)
    assert codes(ev) == ["ORG_LISTED"]
    assert ev[0].value["entity_id"] == "ofac-sdn:306"


def test_unlisted_org_gives_nothing(index: NameIndex) -> None:
    assert evaluate(Facts(org_name="Hetzner Online GmbH"), Ctx(), index) == []
    assert evaluate(Facts(), Ctx(), index) == []


def test_owned_by_restricted_jurisdiction_and_listed_owners(index: NameIndex) -> None:
    facts = Facts(
        org_name="Blue Harbour Trading Ltd",
        org_owners=("Holdco Ltd:100:HK", "Acme Energy:60:RU:Holdco Ltd", "Banco Nacional de Cuba:0"),
    )
    ev = evaluate(facts, Ctx(), index)
    assert "OWNER_LISTED" in codes(ev)
    own = next(e for e in ev if e.code == "ORG_OWNED_BY_RESTRICTED")
    assert own.value["blocked_share"] == 100 and own.value["look_through"] == pytest.approx(60)
    assert any("restricted jurisdiction RU" in c for c in own.value["chains"])


def test_two_owners_aggregate_and_incomplete(index: NameIndex) -> None:
    ev = evaluate(Facts(org_name="Example", org_owners=("A:30:IR", "B:30:KP", "C::DE", "bad entry")), Ctx(), index)
    assert "ORG_OWNED_BY_RESTRICTED" in codes(ev)
    inc = next(e for e in ev if e.code == "OWNERSHIP_INCOMPLETE")
    assert any("unknown percentage" in i for i in inc.value) and any("owner entry 4" in i for i in inc.value)


def test_partial_ownership(index: NameIndex) -> None:
    ev = evaluate(Facts(org_name="Example", org_owners=("A:20:RU", "B:80:US")), Ctx(), index)
    assert codes(ev) == ["ORG_PARTLY_OWNED_BY_RESTRICTED"]


def test_parse_owner() -> None:
    assert parse_owner("Acme:60%:ru:Holdco") == ("Acme", 60.0, "RU", "Holdco")
    assert parse_owner("Acme:") == ("Acme", None, None, None)
    with pytest.raises(ValueError, match="expected"):
        parse_owner("Acme")
    with pytest.raises(ValueError, match="outside"):
        parse_owner("Acme:150")


def test_codes_documented() -> None:
    for c in ["ORG_LISTED", "NAME_MATCH_WEAK", "ORG_OWNED_BY_RESTRICTED", "OWNERSHIP_INCOMPLETE"]:
        assert c in CODES


def test_unavailable_without_lists(monkeypatch: pytest.MonkeyPatch, small_lists: Path) -> None:
    monkeypatch.setenv(cli.ENV_VAR, str(small_lists))  # the library never reads it: the caller passes lists
    ev = evaluate(Facts(org_name="Anything"), Ctx())
    assert codes(ev) == ["SCREENING_UNAVAILABLE"]
    with pytest.raises(SourceError):
        cli.screen_names(["x"])


def test_screen_names_contract(small_lists: Path) -> None:
    cli.clear_cache()
    out = cli.screen_names(["AEROCARIBBEAN AIRLINES", "Hetzner Online GmbH"], directory=small_lists)
    assert [r["verdict"] for r in out] == ["match", "none"]
    assert out[1]["matches"] == []
    m = out[0]["matches"][0]  # type: ignore[index]
    assert set(m) == {"name", "list", "score", "entity_id", "explanation", "verdict"}
    assert m["entity_id"] == "ofac-sdn:36" and m["verdict"] == "match"
    assert cli.load_index(small_lists) is cli.load_index(small_lists)  # cached per process
    assert any(r.unjoined.get("alt") for r in cli.load_reports(small_lists))
    cli.clear_cache()


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty name"),
        ("   \t", "empty name"),
        ("A" * 10_000, "longer than"),
        ("Acme\x00Trading", "control"),
        ("Acme\u202eTrading", "control"),  # a right-to-left override: format characters hide text
        ("\U0001f600\U0001f680", "no letter or digit"),
    ],
)
def test_bad_names_are_per_name_problems(small_lists: Path, name: str, problem: str) -> None:
    out = cli.screen_names([name, "AEROCARIBBEAN AIRLINES"], directory=small_lists)
    assert out[0]["verdict"] is None and problem in str(out[0]["problem"])
    assert out[1]["verdict"] == "match"  # the rest of the batch is answered


@pytest.mark.parametrize(
    "name",
    [
        "AEROCARIBBEAN \U0001f680 AIRLINES",
        "Aerocaribbean Авиалинии 航空",
        "ＡＥＲＯＣＡＲＩＢＢＥＡＮ ＡＩＲＬＩＮＥＳ",
    ],
)
def test_mixed_scripts_and_emoji_are_screened(small_lists: Path, name: str) -> None:
    (r,) = cli.screen_names([name], directory=small_lists)
    assert "problem" not in r and r["verdict"] in {"match", "possible", "none"}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gets_an_answer_or_a_problem(text: str) -> None:
    (r,) = cli.screen_names([text], index=_small_index())
    if "problem" in r:
        assert r["verdict"] is None and isinstance(r["problem"], str) and "\n" not in r["problem"]
    else:
        assert r["verdict"] in {"match", "possible", "none"}


@functools.cache
def _small_index() -> NameIndex:
    return cli.load_index(FIXTURES / "sanctions")
