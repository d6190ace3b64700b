"""Decisions while Redis dies and comes back: fail-mode decisions, no exception, recovery.

A private real ``redis-server`` (tests/redis_support.py) is killed with SIGKILL in the middle
of a stream of decisions and started again on the same port.
"""

from __future__ import annotations

import time

from geowarden import Facts, Warden
from geowarden.intel.snapshot import Snapshot
from geowarden.model import Action, Decision
from geowarden.policy.engine import PolicyEngine
from geowarden.state.redisstore import RedisStore
from redis_support import PrivateRedis

T0 = 1_767_225_600.0
BACKOFF = 0.3


def _codes(d: Decision) -> set[str]:
    return {e.code for e in d.evidence}


def test_redis_killed_mid_stream_then_back(full_snapshot: Snapshot, private_redis: PrivateRedis) -> None:
    server = private_redis
    store = RedisStore(server.url, prefix="gwout:", timeout=0.2, backoff=BACKOFF)
    warden = Warden(full_snapshot, PolicyEngine.load(), state=store)
    shanghai = Facts(ip="101.80.3.4", api_key_id="ak-x", timestamp=T0)

    def relay(i: int) -> Decision:
        return warden.decide(Facts(ip="3.80.0.10", api_key_id="ak-x", timestamp=T0 + 10 + i))

    warden.decide(shanghai)
    before = relay(0)
    assert "KEY_CONCURRENT_DISTANT" in _codes(before) and before.action == Action.REVIEW

    server.kill()
    during: list[tuple[Decision, float]] = []
    for i in range(1, 40):
        t = time.perf_counter()
        d = relay(i)  # never raises
        during.append((d, time.perf_counter() - t))
    assert all("SIGNAL_UNAVAILABLE" in _codes(d) for d, _ in during)
    assert all(any(e.code == "SIGNAL_UNAVAILABLE" and e.value == "key" for e in d.evidence) for d, _ in during)
    # The default policy fails open for `key`: the address decides alone (hosting: challenge).
    assert all(d.action == Action.CHALLENGE and "KEY_CONCURRENT_DISTANT" not in _codes(d) for d, _ in during)
    assert max(s for _, s in during) < 1.0  # bounded: no decision waits long
    assert sorted(s for _, s in during)[len(during) // 2] < 0.05  # most fail fast in the back-off
    assert warden.unavailable["key"] == len(during)
    health = store.health()
    assert health["ok"] is False and health["failures"] >= 1

    server.start()  # an empty server on the same port: the state is gone, the store is not
    time.sleep(BACKOFF + 0.1)
    warden.decide(Facts(ip="101.80.3.4", api_key_id="ak-x", timestamp=T0 + 100))
    after = relay(100)
    assert "SIGNAL_UNAVAILABLE" not in _codes(after)
    assert "KEY_CONCURRENT_DISTANT" in _codes(after) and after.action == Action.REVIEW
    assert store.health()["ok"] is True
