"""Allowlists: signed, expiring tokens that clear a false positive, and registered egress ranges.

**Tokens** clear one account or one API key without publishing its addresses: a reviewer who
overturns a decision issues ``geowarden allow create --account A --days 30 --reason ...``; the
token travels with that account's requests (or sits in the operator's allowlist store) and the
policy sees ``allow.matched``. A token is ``gwa1.<payload>.<mac>``: the payload is base64url JSON
``{"sub": "account:A", "exp": epoch, "why": reason, "iat": epoch}`` and the MAC is HMAC-SHA256
over it with the operator's secret. Tokens cannot be forged without the secret, cannot be moved to
another account, and stop working at ``exp``.

A token carries an id (``jti``) so that it can be revoked (a reopened review revokes the token it
issued; :class:`Revocations` is what the Warden asks), and the list of blocks it may clear
(``clr``, a subset of :data:`CLEARABLE`): by default none of ``tor``, ``restricted`` (a restricted
jurisdiction) or ``sanctions`` (a listed party); the reviewer names them explicitly. The policy reads
them as ``allow.clears`` and decides.

**Egress ranges** are a customer's own infrastructure (cloud NAT, corporate proxies) registered
for their account, so that infrastructure location is not mistaken for user location: requests
of that account from those ranges see ``allow.egress`` and the hosting and VPN rules of the
default policy leave them alone (a restricted country still applies).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from geowarden.errors import ConfigError, InputError

if TYPE_CHECKING:
    from geowarden.settings import Settings

PREFIX = "gwa1"
_SUBJECT_KINDS = ("account", "key")
#: What a token may clear beyond the default, only when the reviewer names it.
CLEARABLE = ("restricted", "tor", "sanctions")


@dataclass(frozen=True, slots=True)
class Grant:
    subject: str  # "account:<id>" or "key:<id>"
    expires: int
    reason: str
    issued: int
    token_id: str = ""
    clears: frozenset[str] = field(default_factory=frozenset)


class Revocations(Protocol):
    """Which allowlist tokens have been revoked (by token id)."""

    def is_revoked(self, token_id: str) -> bool:
        """Whether the token with this id was revoked."""
        ...


def token_id_of(token: str) -> str | None:
    """The id a token claims (unverified: for revocation look-ups only; ``verify`` decides)."""
    try:
        _prefix, body, _mac = token.strip().split(".")
        data = json.loads(_unb64(body))
    except (AttributeError, ValueError, TypeError):
        return None
    return _id_of(data, body) if isinstance(data, dict) else None


def _id_of(data: dict[str, object], body: str) -> str:
    jti = data.get("jti")
    return str(jti) if isinstance(jti, str) and jti else hashlib.sha256(body.encode()).hexdigest()[:16]


class TokenSigner:
    """Issues and verifies allowlist tokens with one secret. The secret never appears in a repr."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ConfigError("the allowlist secret must be at least 16 bytes")
        self._secret = secret

    def __repr__(self) -> str:
        return "TokenSigner(secret=<hidden>)"

    @classmethod
    def from_home(cls, home: Path, secret: str | None = None) -> TokenSigner:
        """The secret given, else the one in ``home/secrets/allowlist.key`` (created, readable by
        the owner only, on first use)."""
        if secret:
            return cls(secret.encode())
        from geowarden.settings import secret_file  # noqa: PLC0415

        return cls(secret_file(home / "secrets" / "allowlist.key"))

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenSigner:
        """The signer of ``GEOWARDEN_ALLOWLIST_SECRET``, else of ``$GEOWARDEN_HOME/secrets/allowlist.key``."""
        secret = settings.allowlist_secret
        return cls.from_home(settings.home, secret.reveal() if secret is not None else None)

    def issue(
        self,
        subject: str,
        *,
        seconds: int,
        reason: str,
        now: float | None = None,
        clears: Iterable[str] = (),
        token_id: str | None = None,
    ) -> str:
        """A token for ``subject`` valid ``seconds``; ``clears`` names blocks beyond the default
        it may clear (:data:`CLEARABLE`)."""
        kind, _, ident = subject.partition(":")
        if kind not in _SUBJECT_KINDS or not ident:
            raise InputError("a token's subject is account:<id> or key:<id>")
        if seconds <= 0:
            raise InputError("a token must expire in the future")
        extra = sorted(set(clears))
        bad = [c for c in extra if c not in CLEARABLE]
        if bad:
            raise InputError(f"a token may clear only {', '.join(CLEARABLE)}")
        issued = int(now if now is not None else time.time())
        payload: dict[str, object] = {
            "sub": subject,
            "exp": issued + seconds,
            "why": reason[:200],
            "iat": issued,
            "jti": token_id or secrets.token_hex(8),
        }
        if extra:
            payload["clr"] = extra
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{PREFIX}.{body}.{self._mac(body)}"

    def verify(self, token: str, *, now: float | None = None) -> Grant | None:
        """The grant of a genuine, unexpired token; None for anything else (never raises)."""
        try:
            prefix, body, mac = token.strip().split(".")
        except (AttributeError, ValueError):
            return None
        if prefix != PREFIX or not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            data = json.loads(_unb64(body))
            clears = data.get("clr") or []
            grant = Grant(
                str(data["sub"]),
                int(data["exp"]),
                str(data.get("why", "")),
                int(data.get("iat", 0)),
                _id_of(data, body),
                frozenset(str(c) for c in clears if c in CLEARABLE),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        if grant.expires <= (now if now is not None else time.time()):
            return None
        return grant

    def grant_for(
        self, token: str | None, *, account_id: str | None, api_key_id: str | None, now: float | None = None
    ) -> Grant | None:
        """The grant of a genuine, unexpired token for this account or key; None otherwise."""
        if not token:
            return None
        grant = self.verify(token, now=now)
        if grant is None:
            return None
        subjects = {f"account:{account_id}" if account_id else "", f"key:{api_key_id}" if api_key_id else ""}
        return grant if grant.subject in subjects else None

    def matches(
        self, token: str | None, *, account_id: str | None, api_key_id: str | None, now: float | None = None
    ) -> bool:
        return self.grant_for(token, account_id=account_id, api_key_id=api_key_id, now=now) is not None

    def derive(self, label: str) -> bytes:
        """A key for another purpose (e.g. signing appeal references), derived from the secret."""
        return hmac.new(self._secret, b"derive:" + label.encode(), hashlib.sha256).digest()

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode(), hashlib.sha256).digest())


class EgressRanges:
    """Per-account registered egress networks."""

    def __init__(self, by_account: Mapping[str, Iterable[str]] | None = None) -> None:
        self._nets: dict[str, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]] = {}
        for account, nets in (by_account or {}).items():
            parsed = []
            for net in nets:
                try:
                    parsed.append(ipaddress.ip_network(str(net), strict=False))
                except ValueError:
                    raise ConfigError(f"egress ranges of account {account!r}: {net!r} is not a network") from None
            self._nets[str(account)] = tuple(parsed)

    def __len__(self) -> int:
        return len(self._nets)

    def matches(self, account_id: str | None, ip: str | None) -> bool:
        if not account_id or not ip:
            return False
        nets = self._nets.get(account_id)
        if not nets:
            return False
        try:
            addr = ipaddress.ip_address(ip.strip())
        except ValueError:
            return False
        return any(addr in net for net in nets if net.version == addr.version)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
