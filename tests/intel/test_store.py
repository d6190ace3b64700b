from __future__ import annotations

from pathlib import Path

import pytest

from geowarden.errors import NoSnapshotError, SnapshotError
from geowarden.intel.build import build_snapshot
from geowarden.intel.sources.base import SourceKind
from geowarden.intel.store import SnapshotStore
from helpers import source


def _src(cc: str) -> list:
    return [source("dbip-country", SourceKind.COUNTRY, [("1.0.0.0/8", cc)])]


def test_no_snapshot_and_no_default_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(NoSnapshotError):
        SnapshotStore(tmp_path).open_current()


def test_first_open_builds_the_default_once(tmp_path: Path) -> None:
    calls = []

    def default() -> list:
        calls.append(1)
        return _src("AU")

    store = SnapshotStore(tmp_path)
    assert store.open_current(default_sources=default).lookup("1.1.1.1").country == "AU"
    assert store.open_current(default_sources=default).lookup("1.1.1.1").country == "AU"
    assert calls == [1]


def test_activate_switches_and_prunes_but_keeps_current(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, keep=2)
    paths = [store.build_and_activate(_src(cc), note=cc) for cc in ("AU", "NZ", "FJ")]
    assert store.current_path() == paths[-1]
    assert store.open_current().lookup("1.1.1.1").country == "FJ"
    assert [p.name for p in store.snapshots()] == sorted(p.name for p in paths[1:])


def test_activate_refuses_foreign_or_broken_snapshots(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "a")
    other = build_snapshot(_src("AU"), tmp_path / "b")
    with pytest.raises(SnapshotError, match="not a snapshot of"):
        store.activate(other)
    store.dir.mkdir(parents=True)
    (store.dir / "CURRENT").write_text("missing-id\n")
    with pytest.raises(SnapshotError, match="missing"):
        store.current_path()


def test_build_without_activating_keeps_the_current_one(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    current = store.build_and_activate(_src("AU"), note="AU")
    built = store.build_and_activate(_src("NZ"), note="NZ", activate=False)
    assert built != current
    assert store.current_path() == current
    assert {p.name for p in store.snapshots()} == {current.name, built.name}
