"""Fixtures of the audit tests: ``url``, an empty audit database on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chain_support import url_fixture


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty audit database on each back end (PostgreSQL: a throwaway schema, dropped after)."""
    yield from url_fixture(request, tmp_path)
