"""Several worker processes (issue 19, item 6): every scrape of /metrics counts the decisions of
all workers, whichever worker answers it. The real `geowarden serve --workers 2` on loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from geowarden.intel.snapshot import Snapshot
from service.test_e2e import Server, start, stop

pytestmark = pytest.mark.slow  # a real server with two worker processes


@pytest.fixture(scope="module")
def two_workers(tiny_snapshot: Snapshot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start(tiny_snapshot, tmp_path_factory.mktemp("workers-home"), args=("--workers", "2"))
    yield srv
    stop(srv)


def _decisions(text: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(r"^geowarden_decisions_total\{[^}]*\} (\S+)$", text, re.M))


def test_every_scrape_counts_every_worker(two_workers: Server) -> None:
    token = two_workers.tokens["decide"]
    for i in range(40):  # a new connection each time, so both workers take some
        with httpx.Client(base_url=two_workers.url, headers={"authorization": f"Bearer {token}"}) as c:
            assert c.post("/v1/decide", json={"ip": "8.8.8.8", "account_id": f"w{i}"}).status_code == 200
    seen = []
    for _ in range(8):
        with httpx.Client(base_url=two_workers.url) as c:
            r = c.get("/metrics")
            assert r.status_code == 200
            seen.append(_decisions(r.text))
            assert r.text.count("# TYPE geowarden_state_up gauge") == 1
    assert seen == [40.0] * 8
