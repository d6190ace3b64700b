"""Shared fixtures: the real lists parsed and indexed once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from geowarden.screening.lists import Entity, ParseReport, load_directory
from geowarden.screening.match import NameIndex
from helpers import require_shared


@pytest.fixture(scope="session")
def sanctions_dir() -> Path:
    return require_shared() / "sanctions"


@pytest.fixture(scope="session")
def loaded(sanctions_dir: Path) -> tuple[list[Entity], list[ParseReport]]:
    return load_directory(sanctions_dir)


@pytest.fixture(scope="session")
def index(loaded: tuple[list[Entity], list[ParseReport]]) -> NameIndex:
    return NameIndex(loaded[0])
