"""Shared fixtures: the lists parsed and indexed once per session.

``index`` is built from the few OFAC rows written for the tests (tests/fixtures/sanctions, the
official CSV layout): the matching logic needs no shared data. ``shared_index`` is built from the
real lists in ../shared/data, for what only the real lists can show (no strong match for unlisted
names among fifteen thousand parties, the real counts).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from geowarden.screening.entity import Entity, ParseReport
from geowarden.screening.lists import load_directory
from geowarden.screening.match import NameIndex
from helpers import FIXTURES, require_shared


@pytest.fixture(scope="session")
def small_lists() -> Path:
    return FIXTURES / "sanctions"


@pytest.fixture(scope="session")
def index(small_lists: Path) -> NameIndex:
    return NameIndex(load_directory(small_lists)[0])


@pytest.fixture(scope="session")
def sanctions_dir() -> Path:
    return require_shared() / "sanctions"


@pytest.fixture(scope="session")
def loaded(sanctions_dir: Path) -> tuple[list[Entity], list[ParseReport]]:
    return load_directory(sanctions_dir)


@pytest.fixture(scope="session")
def shared_index(loaded: tuple[list[Entity], list[ParseReport]]) -> NameIndex:
    return NameIndex(loaded[0])
