"""``intel update`` for the sanctions lists (intel/sanctions_update.py), against a mock internet."""

from __future__ import annotations

from pathlib import Path

import httpx

from geowarden.intel import sanctions
from geowarden.intel.sanctions_update import packaged_lists, update_lists
from helpers import FIXTURES

LISTS = {r.name: r for r in packaged_lists()}


def _client(routes: dict[str, bytes]) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        body = routes.get(str(request.url))
        return httpx.Response(404, text="not found") if body is None else httpx.Response(200, content=body)

    return httpx.Client(transport=httpx.MockTransport(handle))


def _ofac_routes() -> dict[str, bytes]:
    """The OFAC files written for the tests, served at OFAC's URLs (UN, BIS and CSL are 404)."""
    routes: dict[str, bytes] = {}
    for r in LISTS.values():
        local = FIXTURES / r.dest
        if local.is_file():
            routes[r.url] = local.read_bytes()
    assert LISTS["ofac-sdn"].url in routes
    return routes


def test_packaged_table_covers_every_list() -> None:
    dests = {r.dest for r in LISTS.values()}
    assert {"sanctions/ofac/sdn.csv", "sanctions/un/consolidated.xml", "sanctions/bis/dpl.txt"} <= dests
    assert any(d.startswith("sanctions/csl/") for d in dests)
    assert all(r.url.startswith("https://") for r in LISTS.values())
    assert [r.name for r in LISTS.values() if r.required] == ["ofac-sdn"]


def test_update_installs_what_verified_and_reports_the_rest(tmp_path: Path) -> None:
    intel, downloads = tmp_path / "intel", tmp_path / "downloads"
    with _client(_ofac_routes()) as http:
        result = update_lists(intel, downloads, http)
    assert result["installed"], result
    assert {d["name"] for d in result["downloaded"]} >= {"ofac-sdn", "ofac-sdn-alt"}
    assert {s["name"] for s in result["skipped"]} >= {"un-consolidated", "bis-dpl", "csl"}
    assert all("HTTP 404" in s["reason"] and not s["kept"] for s in result["skipped"])
    cur = sanctions.current(intel)
    assert (
        cur is not None
        and (cur / "ofac" / "sdn.csv").read_bytes() == (FIXTURES / "sanctions/ofac/sdn.csv").read_bytes()
    )
    assert not list(downloads.iterdir())  # the staging directory is gone


def test_a_list_that_shrank_by_half_is_refused_and_the_installed_copy_kept(tmp_path: Path) -> None:
    intel, downloads = tmp_path / "intel", tmp_path / "downloads"
    routes = _ofac_routes()
    with _client(routes) as http:
        first = update_lists(intel, downloads, http)
    sdn = LISTS["ofac-sdn"].url
    lines = routes[sdn].splitlines(keepends=True)
    routes[sdn] = b"".join(lines[:1])  # one party left
    with _client(routes) as http:
        second = update_lists(intel, downloads, http)
    skipped = {s["name"]: s for s in second["skipped"]}
    assert "refused" in skipped["ofac-sdn"]["reason"] and skipped["ofac-sdn"]["kept"]
    cur = sanctions.current(intel)
    assert cur is not None and (cur / "ofac" / "sdn.csv").read_bytes() == b"".join(lines)
    assert second["lists"]["lists"][0]["parties"] == first["lists"]["lists"][0]["parties"]


def test_without_the_sdn_list_nothing_is_switched(tmp_path: Path) -> None:
    routes = _ofac_routes()
    routes[LISTS["ofac-sdn"].url] = b"<html>maintenance</html>"
    with _client(routes) as http:
        result = update_lists(tmp_path / "intel", tmp_path / "downloads", http)
    assert not result["installed"] and result["error"].startswith("ofac-sdn")
    assert sanctions.current(tmp_path / "intel") is None and result["lists"] is None
