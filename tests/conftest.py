"""Shared fixtures: real data from ../shared/data, and snapshots built once per session."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from geowarden.intel.build import build_snapshot
from geowarden.intel.snapshot import Snapshot
from helpers import require_shared, tiny_sources
from redis_support import PrivateRedis, free_port


@pytest.fixture(scope="session")
def tiny_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    path = build_snapshot(tiny_sources(), tmp_path_factory.mktemp("tiny"))
    return Snapshot.open(path)


@pytest.fixture(scope="session")
def full_snapshot_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot built from everything recognised under ../shared/data (about a minute)."""
    from geowarden.intel.sources import discover

    data = require_shared()
    return build_snapshot(discover(data), tmp_path_factory.mktemp("full"))


@pytest.fixture(scope="session")
def full_snapshot(full_snapshot_path: Path) -> Snapshot:
    return Snapshot.open(full_snapshot_path)


@pytest.fixture(scope="session")
def default_snapshot_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default snapshot: built only from data installed with the dependencies."""
    from geowarden.intel.sources.pypi import default_sources

    return build_snapshot(default_sources(), tmp_path_factory.mktemp("default"), note="default")


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A throwaway real redis-server on a free port, for tests that kill and restart it."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server not on PATH (required under CI)")
        pytest.skip("redis-server not on PATH")
    server = PrivateRedis(free_port(), tmp_path)
    server.start()
    yield server
    server.kill()
