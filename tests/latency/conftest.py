"""The WonderNetwork mesh (../shared/data/latency/wondernetwork), loaded once per session."""

from __future__ import annotations

import pytest
from latency_data import WN, load_wn

from helpers import require_shared


@pytest.fixture(scope="session")
def wn() -> WN:
    return load_wn(require_shared() / "latency" / "wondernetwork")
