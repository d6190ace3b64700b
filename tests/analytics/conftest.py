"""Fixtures for the loader, keys, infrastructure, Spark and CLI tests: a snapshot of a small,
fully known world (``analytics_world.NETS``) and a log writer."""

from __future__ import annotations

from pathlib import Path

import pytest
from analytics_world import LogWriter, world_sources

from geowarden.intel.build import build_snapshot
from geowarden.intel.snapshot import Snapshot


@pytest.fixture(scope="session")
def world_snapshot_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_snapshot(world_sources(), tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="session")
def world_snapshot(world_snapshot_path: Path) -> Snapshot:
    return Snapshot.open(world_snapshot_path)


@pytest.fixture
def logs() -> LogWriter:
    return LogWriter()
