"""The Redis store when Redis is not there: bounded failures, fail-fast back-off, recovery.

Real servers only: a closed port, a socket that accepts and never answers, and a private
``redis-server`` on a free port that a test kills with SIGKILL mid-stream and starts again.
The machine's shared Redis on 6379 is never touched.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest
import redis

from geowarden.errors import ConfigError
from geowarden.state.base import Count, Distinct, FirstSeen, Hours, Op, Places, StateUnavailable
from geowarden.state.redisstore import SCRIPT_SHA, RedisStore
from redis_support import PrivateRedis, accepted, free_port

BATCH: list[Op] = [
    Distinct("k:1:ip", "1.2.3.4", (600, 3600, 86400)),
    Count("k:1:req", 1.0, (3600, 86400)),
    Places("k:1:places", "US", 86400),
    Hours("k:1:hours", 7),
    FirstSeen("a:1:first", 86400),
]
BOUND = 0.5  # seconds: no call may take longer, whatever the server does (timeouts are 0.05-0.2 s)


def test_closed_port_fails_fast_then_backs_off_without_touching_the_network() -> None:
    port = free_port()
    store = RedisStore(f"redis://:s3cret-pw@127.0.0.1:{port}/0", timeout=0.05, backoff=0.3)
    t = time.monotonic()
    with pytest.raises(StateUnavailable) as err:
        store.apply(BATCH, 1e9)
    assert time.monotonic() - t < BOUND
    message = str(err.value)
    assert "\n" not in message and "s3cret" not in message and f"127.0.0.1:{port}" in message
    h = store.health()
    assert (h["ok"], h["failures"], h["backing_off"]) == (False, 1, True)
    assert "s3cret" not in str(h)

    # Something listens there now, and never answers: during the back-off nobody connects.
    with socket.create_server(("127.0.0.1", port)) as listener:
        t = time.monotonic()
        for _ in range(50):
            with pytest.raises(StateUnavailable, match="retrying in"):
                store.apply(BATCH, 1e9)
        assert time.monotonic() - t < 0.05  # 50 calls, no waiting
        assert not accepted(listener)
        assert store.health()["failures"] == 51

        time.sleep(0.3)  # back-off over: the next call probes, and times out on the silent listener
        t = time.monotonic()
        with pytest.raises(StateUnavailable, match="Timeout"):
            store.apply(BATCH, 1e9)
        assert time.monotonic() - t < BOUND
        assert accepted(listener)
        assert store.health()["backing_off"] is True
    store.close()


def test_server_killed_mid_stream_then_restarted(private_redis: PrivateRedis) -> None:
    # A looser timeout than the default: the machine is shared and a spurious timeout before the
    # kill would be right, but not what this test is about (the closed-port test checks 0.05 s).
    store = RedisStore(private_redis.url, prefix="gw:", timeout=0.2, backoff=0.2)
    outcomes: list[tuple[float, str, float]] = []  # (start, "ok" | "unavailable" | other error, seconds taken)
    stop = threading.Event()

    def stream() -> None:
        now = 1e9
        while not stop.is_set():
            now += 1
            t = time.monotonic()
            try:
                store.apply(BATCH, now)
                kind = "ok"
            except StateUnavailable:
                kind = "unavailable"
            except Exception as exc:  # what the test is looking for: anything else is a failure
                kind = f"{type(exc).__name__}: {exc}"
            outcomes.append((t, kind, time.monotonic() - t))
            time.sleep(0.002)

    worker = threading.Thread(target=stream)
    worker.start()
    try:
        time.sleep(0.3)
        killed_at = time.monotonic()
        private_redis.kill()
        time.sleep(0.6)
        restarted_at = time.monotonic()
        fresh = private_redis.client()
        private_redis.start()
        assert fresh.script_exists(SCRIPT_SHA) == [False]  # a new server: the script must be loaded again
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(k == "ok" and t > restarted_at for t, k, _ in outcomes):
            time.sleep(0.05)
        time.sleep(0.1)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()

    kinds = {k for _, k, _ in outcomes}
    assert kinds <= {"ok", "unavailable"}, kinds - {"ok", "unavailable"}
    assert max(d for _, _, d in outcomes) < BOUND
    before = [k for t, k, d in outcomes if t + d < killed_at]
    during = [k for t, k, d in outcomes if killed_at < t and t + d < restarted_at]
    after = [k for t, k, _ in outcomes if t > restarted_at]
    assert before and set(before) == {"ok"}
    assert during and set(during) == {"unavailable"}
    assert "ok" in after and after[-1] == "ok"  # recovered by itself, and stays up
    assert fresh.script_exists(SCRIPT_SHA) == [True]
    h = store.health()
    assert h["ok"] is True and h["backing_off"] is False
    assert h["failures"] == sum(k == "unavailable" for _, k, _ in outcomes)
    assert h["failed_fast"] > 0  # most of the outage cost no network wait
    # The restarted server kept nothing (no persistence): state starts again from the restart.
    first_seen = redis.Redis(port=private_redis.port).get("gw:a:1:first|f")
    assert first_seen is not None and struct.unpack_from("<d", first_seen)[0] > 1e9 + len(before)
    fresh.close()
    store.close()


def test_script_flush_is_reloaded_transparently(private_redis: PrivateRedis) -> None:
    store = RedisStore(private_redis.url, timeout=0.05)
    assert store.apply([Count("n", 1.0, (60,))], 1e9) == [(1.0,)]
    client = private_redis.client()
    client.script_flush()
    assert client.script_exists(SCRIPT_SHA) == [False]
    assert store.apply([Count("n", 1.0, (60,))], 1e9) == [(2.0,)]
    assert client.script_exists(SCRIPT_SHA) == [True]
    assert store.health()["failures"] == 0
    client.close()
    store.close()


def test_an_error_the_server_answers_does_not_back_off(private_redis: PrivateRedis) -> None:
    """A wrong-type key breaks that name's batches, not every decision's."""
    store = RedisStore(private_redis.url, prefix="gw:", timeout=0.05, backoff=5.0)
    client = private_redis.client()
    client.hset("gw:bad|c:60", "x", "not a counter ring")
    with pytest.raises(StateUnavailable, match="WRONGTYPE"):
        store.apply([Count("bad", 1.0, (60,))], 1e9)
    assert store.apply([Count("good", 1.0, (60,))], 1e9) == [(1.0,)]
    h = store.health()
    assert (h["ok"], h["failures"], h["backing_off"]) == (True, 1, False)
    assert "WRONGTYPE" in h["last_error"]
    client.close()
    store.close()


def test_clear_and_put_flag_fail_the_same_way() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.05, backoff=0.3)
    with pytest.raises(StateUnavailable):
        store.clear()
    with pytest.raises(StateUnavailable, match="retrying in"):
        store.put_flag("k", "F", {}, 60, 1e9)
    assert store.health()["failures"] == 2
    store.close()


@pytest.mark.parametrize("url", ["redis://:s3cret-pw@127.0.0.1:notaport/0", "redis://:s3cret-pw@127.0.0.1:6379/notadb"])
def test_a_bad_url_is_a_config_error_without_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        RedisStore(url)
    assert "s3cret" not in str(err.value) and "\n" not in str(err.value)
