"""Shared fixtures: real data from ../shared/data, and snapshots built once per session.

A test that uses a fixture in :data:`SLOW_FIXTURES`, or lives in one of :data:`SLOW_FOLDERS`, is
marked ``slow`` here (``make test-fast`` leaves it out, ``make test`` runs it); other slow tests
carry ``@pytest.mark.slow`` themselves.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from geowarden.intel.build import build_snapshot
from geowarden.intel.snapshot import Snapshot
from helpers import require, require_shared, tiny_sources
from redis_support import PrivateRedis, free_port

#: Fixtures that make any test using them slow: a snapshot built from all of ../shared/data
#: (about a minute), ``intel update`` over all of it (tests/intel/test_update.py), a private
#: redis-server killed with -9 and restarted.
SLOW_FIXTURES = frozenset({"full_snapshot_path", "full_run", "private_redis"})
#: Folders whose every test is slow: the property-based fuzz suite (about 80 s in its default profile).
SLOW_FOLDERS = frozenset({"fuzz"})


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        slow_folder = SLOW_FOLDERS.intersection(item.path.parent.relative_to(item.config.rootpath).parts)
        if slow_folder or SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


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
    require(shutil.which("redis-server"), "redis-server not on PATH")
    server = PrivateRedis(free_port(), tmp_path)
    server.start()
    yield server
    server.kill()
