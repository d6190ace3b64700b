"""Sanctions lists as intel (intel/sanctions.py): installed by ``intel build --from DIR``, switched
in one rename, shown by ``intel info``, and screened against with no environment variable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fuzz.fuzzkit import run_cli
from geowarden.errors import SourceError
from geowarden.intel import sanctions
from geowarden.settings import Settings
from helpers import FIXTURES

IP_FILES = {
    "cloud/digitalocean.csv": b"5.101.96.0/21,NL,NL-NH,Amsterdam,1098 XH\n",
    "cloud/cloudflare-v4-ip-ranges.txt": b"173.245.48.0/20\n",
}


def _source(root: Path) -> Path:
    """A --from directory: two small IP sources and the OFAC rows written for the tests."""
    for name, data in IP_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    shutil.copytree(FIXTURES / "sanctions", root / "sanctions")
    return root


def test_install_switches_and_keeps_the_previous_on_a_bad_list(tmp_path: Path) -> None:
    src = _source(tmp_path / "src") / "sanctions"
    intel = tmp_path / "intel"
    assert sanctions.current(intel) is None
    first = sanctions.install(src, intel)
    cur = sanctions.current(intel)
    assert cur is not None and (cur / "ofac" / "sdn.csv").is_file()
    assert first["lists"][0]["file"] == "ofac/sdn.csv"
    assert all(x["parties"] > 0 and x["date"] for x in first["lists"])
    # an unreadable list: refused by name, the installed lists stay current
    bad = tmp_path / "bad"
    (bad / "un").mkdir(parents=True)
    (bad / "un" / "consolidated.xml").write_text("<CONSOLIDATED_LIST><INDIVIDUALS>", encoding="utf-8")
    with pytest.raises(SourceError, match=r"consolidated\.xml"):
        sanctions.install(bad, intel)
    assert sanctions.current(intel) == cur and (sanctions.info(intel) or {})["lists"] == first["lists"]
    assert not [p for p in (intel / "sanctions").iterdir() if p.name.startswith(".")]


def test_settings_find_the_installed_lists(tmp_path: Path) -> None:
    settings = Settings.from_env({"GEOWARDEN_HOME": str(tmp_path)})
    assert settings.screening_lists is None
    sanctions.install(_source(tmp_path / "src") / "sanctions", settings.intel_dir)
    assert settings.screening_lists == settings.intel_dir / "sanctions" / "current"
    pinned = Settings.from_env({"GEOWARDEN_HOME": str(tmp_path), "GEOWARDEN_SCREENING_DATA": str(tmp_path / "src")})
    assert pinned.screening_lists == tmp_path / "src"


def test_build_from_installs_lists_and_screen_needs_no_variable(tmp_path: Path) -> None:
    src = _source(tmp_path / "src")
    env = {"GEOWARDEN_HOME": str(tmp_path / "home")}
    r = run_cli(["screen", "Anything", "--json"], env)
    assert r.code != 0 and "intel build --from" in r.stderr, r
    r = run_cli(["intel", "build", "--from", str(src), "--json", "-q"], env)
    assert r.code == 0, r
    built = json.loads(r.stdout)
    assert built["sanctions"]["lists"][0]["parties"] > 0
    r = run_cli(["intel", "info", "--json", "-q"], env)
    assert r.code == 0, r
    assert json.loads(r.stdout)["sanctions"]["lists"] == built["sanctions"]["lists"]
    listed = (src / "sanctions" / "ofac" / "sdn.csv").read_text(encoding="latin-1").splitlines()[0].split(",")[1]
    r = run_cli(["screen", listed.strip('"'), "--json"], env)
    assert r.code == 0, r
    assert json.loads(r.stdout)[0]["verdict"] == "match"
