"""Behaviour state between requests: sliding windows, distinct counts, places, hour profiles,
flags. One interface (``base.StateStore``), two stores: in memory (default) and Redis."""

from __future__ import annotations

from geowarden.errors import ConfigError
from geowarden.state.base import StateStore, StateUnavailable
from geowarden.state.memory import MemoryStore

__all__ = ["MemoryStore", "StateStore", "StateUnavailable", "open_store"]


def open_store(url: str | None = None, *, prefix: str = "gw:") -> StateStore:
    """The store a URL names: ``memory`` (or nothing) for this process's memory, or
    ``redis://host:port/db`` (``rediss://`` for TLS, ``unix:///path``) for a Redis server."""
    if not url or url in ("memory", "memory://"):
        return MemoryStore()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from geowarden.state.redisstore import RedisStore  # noqa: PLC0415 - only when configured

        return RedisStore(url, prefix=prefix)
    raise ConfigError(f"state store URL must be 'memory' or redis://host:port/db, not {url.split('://')[0]!r}")
