"""API tokens with scopes, hashed at rest.

``geowarden token create --scope decide`` prints a token once; only its SHA-256 is kept (in
``$GEOWARDEN_HOME/tokens.json``, mode 0600). Scopes: ``decide`` (the decision endpoints),
``review`` (the review queue and dashboard), ``admin`` (everything). A token's secret never
appears in a log line or a repr.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from geowarden.errors import ConfigError

SCOPES = ("decide", "review", "admin")
PREFIX = "gwt_"
RELOAD_SECONDS = 1.0  # how often a running service looks for tokens created by `geowarden token create`


@dataclass(frozen=True, slots=True)
class TokenInfo:
    name: str
    scopes: frozenset[str]
    created: float

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


class TokenStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._by_hash: dict[str, TokenInfo] = {}
        self._mtime = -1.0
        self._checked = -1e9
        self._load()

    def __repr__(self) -> str:
        return f"TokenStore({len(self._by_hash)} tokens)"

    def _load(self) -> None:
        now = time.monotonic()
        if now - self._checked < RELOAD_SECONDS:
            return
        self._checked = now
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._by_hash = {}
            return
        if mtime == self._mtime:
            return
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            self._by_hash = {
                h: TokenInfo(v["name"], frozenset(v["scopes"]), float(v["created"])) for h, v in raw["tokens"].items()
            }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{self.path}: unreadable token store ({type(exc).__name__})") from None
        self._mtime = mtime

    def create(self, scopes: list[str], *, name: str | None = None) -> str:
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise ConfigError(f"scope must be one of {', '.join(SCOPES)}")
        token = PREFIX + secrets.token_urlsafe(32)
        self._checked = -1e9
        self._load()
        info = TokenInfo(name or f"token-{len(self._by_hash) + 1}", frozenset(scopes), time.time())
        self._by_hash[_hash(token)] = info
        self._save()
        return token

    def check(self, token: str | None, scope: str | None) -> TokenInfo | None:
        """The token's info if it exists and carries ``scope`` (any scope when None); None otherwise."""
        if not token or not token.startswith(PREFIX):
            return None
        self._load()
        digest = _hash(token)
        for h, info in self._by_hash.items():
            if hmac.compare_digest(h, digest):
                return info if scope is None or info.allows(scope) else None
        return None

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "tokens": {
                h: {"name": i.name, "scopes": sorted(i.scopes), "created": i.created} for h, i in self._by_hash.items()
            }
        }
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(body, fh)
        tmp.replace(self.path)
        self._mtime = self.path.stat().st_mtime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
