from __future__ import annotations

from pathlib import Path

import pytest

from geowarden.errors import SourceError
from geowarden.screening.entity import OFAC_CONS, OFAC_SDN, UN_CONS, Entity, ParseReport, country_code
from geowarden.screening.lists import load_directory
from geowarden.screening.ofac import parse_ofac
from geowarden.screening.trade import parse_dpl
from geowarden.screening.un import parse_un


def _by_id(entities: list[Entity]) -> dict[str, Entity]:
    return {e.entity_id: e for e in entities}


def test_sdn_with_aliases_addresses_and_unjoined_ids(sanctions_dir: Path) -> None:
    ofac = sanctions_dir / "ofac"
    ents, rep = parse_ofac(ofac / "sdn.csv", ofac / "alt.csv", ofac / "add.csv")
    assert rep.entities == len(ents) == 14965
    assert rep.skipped == []
    # alt/add are a newer vintage: some ids do not join, and they are counted
    assert rep.unjoined["alt"] > 0 and rep.unjoined["add"] > 0
    e = _by_id(ents)["ofac-sdn:306"]
    assert e.name == "BANCO NACIONAL DE CUBA" and e.list == OFAC_SDN and e.kind == "entity"
    assert "NATIONAL BANK OF CUBA" in e.aliases and "BNC" in e.aliases
    assert "CUBA" in e.programmes and "CH" in e.countries


def test_older_sdn_version_parses_with_its_date(sanctions_dir: Path) -> None:
    ents, rep = parse_ofac(sanctions_dir / "ofac" / "sdn-2024-03-15.csv")
    assert rep.entities == len(ents) > 14000 and not rep.skipped
    assert ents[0].list_date == "2024-03-15"


def test_un_individuals_and_entities(sanctions_dir: Path) -> None:
    ents, rep = parse_un(sanctions_dir / "un" / "consolidated.xml")
    assert rep.entities == 730 + 273
    kinds = {e.kind for e in ents}
    assert kinds == {"individual", "entity"}
    assert all(e.list == UN_CONS and e.list_date == "2026-02-27" for e in ents)
    badege = next(e for e in ents if e.name == "ERIC BADEGE")
    assert badege.listed_on == "2012-12-31" and "CD" in badege.countries and badege.programmes == ["DRC"]
    assert sum(len(e.aliases) for e in ents) > 1000


def test_bis_dpl_groups_addresses(sanctions_dir: Path) -> None:
    ents, rep = parse_dpl(sanctions_dir / "bis" / "dpl.txt")
    assert rep.rows == 581 and 0 < rep.entities < rep.rows
    assert all(e.listed_on is None or len(e.listed_on) == 10 for e in ents)


def test_directory_loads_every_list(loaded: tuple[list[Entity], list[ParseReport]]) -> None:
    ents, _reports = loaded
    lists = {e.list for e in ents}
    assert {"OFAC SDN", "OFAC Consolidated", "UN Consolidated", "BIS DPL"} <= lists
    assert any("Entity List" in x or "Nonproliferation" in x for x in lists)  # CSL samples


def test_malformed_rows_are_counted_not_fatal(tmp_path: Path) -> None:
    p = tmp_path / "sdn.csv"
    p.write_text(
        '36,"AEROCARIBBEAN AIRLINES",-0- ,"CUBA",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n'
        '37,"TOO FEW FIELDS",-0- \r\n'
        'x,"BAD ID",-0- ,"CUBA",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n\x1a',
        encoding="utf-8",
    )
    ents, rep = parse_ofac(p)
    assert [e.name for e in ents] == ["AEROCARIBBEAN AIRLINES"]
    assert [line for line, _ in rep.skipped] == [2, 3]


def test_unreadable_and_wrong_files_raise_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        parse_ofac(tmp_path / "missing.csv")
    bad = tmp_path / "un.xml"
    bad.write_text("<NOT_A_LIST/>", encoding="utf-8")
    with pytest.raises(SourceError):
        parse_un(bad)


def test_country_names_resolve() -> None:
    assert country_code("Russia") == "RU"
    assert country_code("Korea, North") == "KP"
    assert country_code("Iran") == "IR"
    assert country_code("The Gambia") == "GM"
    assert country_code("Region: Crimea") == "UA"
    assert country_code("Atlantis") is None


def test_a_directory_joins_aliases_and_addresses_and_counts_what_does_not_join(
    small_lists: Path, tmp_path: Path
) -> None:
    ents, reports = load_directory(small_lists)
    assert [Path(r.source).name for r in reports] == ["sdn.csv", "cons_prim.csv"]
    assert [r.entities for r in reports] == [7, 1] and not any(r.skipped for r in reports)
    assert reports[0].unjoined == {"alt": 1, "add": 1}  # rows for an entity this vintage lacks
    e = _by_id(ents)["ofac-sdn:18782"]
    assert e.aliases == ["RUSSIAN DEFENSE EXPORT ROSOBORONEXPORT", "ROSOBORONEXPORT JSC"] and e.countries == ["RU"]
    assert {e.list for e in ents} == {OFAC_SDN, OFAC_CONS}
    with pytest.raises(SourceError, match="no sanctions list"):
        load_directory(tmp_path)
