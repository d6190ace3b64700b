"""State store fixtures: both stores, the Redis one against the real server.

The Redis server is ``GEOWARDEN_TEST_REDIS`` (default ``redis://127.0.0.1:6379/0``, the
machine's; ``.ci/run`` starts it). Each test gets its own random key prefix and clears it
afterwards, so tests never see each other's keys. Without a server the Redis cases skip,
except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis
from state_support import MakeStore, unique_prefix

from geowarden.state.base import StateStore
from geowarden.state.memory import MemoryStore
from geowarden.state.redisstore import RedisStore
from helpers import require

REDIS_URL = os.environ.get("GEOWARDEN_TEST_REDIS", "redis://127.0.0.1:6379/0")
#: Generous timeouts for the contract tests (2 shared cores, other suites running): the
#: outage tests check the tight default separately.
TIMEOUT = 2.0


def _redis_answers() -> str | None:
    """None when the test server answers PING, else why not."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        client.ping()
        return None
    except redis.RedisError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test server's URL; skips (or fails under CI) when it does not answer."""
    why = _redis_answers()
    require(why is None, f"Redis not answering at {REDIS_URL}: {why}")
    return REDIS_URL


@pytest.fixture
def make_store(request: pytest.FixtureRequest) -> Iterator[MakeStore]:
    """``make_store(kind, prefix=None)``: a fresh store; Redis ones are cleared and closed after."""
    made: list[StateStore] = []

    def make(kind: str, prefix: str | None = None) -> StateStore:
        store: StateStore
        if kind == "memory":
            store = MemoryStore()
        else:
            url = request.getfixturevalue("redis_url")
            store = RedisStore(url, prefix=prefix or unique_prefix(), timeout=TIMEOUT)
        made.append(store)
        return store

    yield make
    for store in made:
        store.clear()
        store.close()


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, make_store: MakeStore) -> StateStore:
    return make_store(request.param)
