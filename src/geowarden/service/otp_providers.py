"""What the challenge flow plugs into the one-time-code service: a Twilio Verify sender and a
Redis store for challenges and rate limits.

- :class:`TwilioVerifySender` delivers the code through Twilio Verify (``POST
  {base}/v2/Services/{service_sid}/Verifications``, form ``To``, ``Channel=sms``, ``CustomCode``):
  Twilio writes and localises the message, geowarden keeps generating, hashing and checking the
  code (the Verify service must allow custom codes). The number travels in the body, never in a
  URL; on failure only the HTTP status is reported.
- :class:`RedisOtpStore` implements ``OtpStore`` over Redis (``GEOWARDEN_STATE_URL``), so every
  worker sees every challenge and the rate limits count across workers: a challenge is a hash with
  a TTL, attempts are ``HINCRBY``, rate-limit events a sorted set of timestamps per key.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

import httpx

from geowarden.errors import ConfigError
from geowarden.signals.otp import OtpDeliveryError, StoredChallenge


class TwilioVerifySender:
    """``OtpSender`` over Twilio Verify with a custom code (see the module)."""

    def __init__(
        self,
        service_sid: str,
        account_sid: str,
        auth_token: str,
        *,
        client: httpx.Client | None = None,
        base_url: str = "https://verify.twilio.com",
        timeout: float = 5.0,
    ) -> None:
        if not service_sid or not account_sid or not auth_token:
            raise ConfigError("Twilio Verify needs a service SID, an account SID and its token")
        self._url = f"{base_url.rstrip('/')}/v2/Services/{quote(service_sid, safe='')}/Verifications"
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._client = client or httpx.Client(timeout=timeout)

    def __repr__(self) -> str:
        return "TwilioVerifySender()"

    def send_code(self, to: str, code: str) -> None:
        """Ask Twilio Verify to send ``code`` to ``to`` by SMS."""
        form = {"To": to, "Channel": "sms", "CustomCode": code}
        try:
            resp = self._client.post(self._url, data=form, auth=self._auth)
        except httpx.HTTPError as exc:
            raise OtpDeliveryError(f"Twilio Verify unreachable ({type(exc).__name__})") from None
        if resp.status_code not in (200, 201):
            raise OtpDeliveryError(f"Twilio Verify refused the verification (HTTP {resp.status_code})")

    def send(self, to: str, message: str) -> None:
        """Not used: Verify writes its own message (``send_code``)."""
        del to, message
        raise OtpDeliveryError("Twilio Verify sends codes, not messages")


class RedisOtpStore:
    """``OtpStore`` over Redis (see the module); keys under ``prefix``."""

    def __init__(self, client: Any, *, prefix: str = "gw:otp:") -> None:
        self._r = client
        self._p = prefix

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "gw:otp:", timeout: float = 0.5) -> RedisOtpStore:
        """A store on the Redis server ``url`` names (``GEOWARDEN_STATE_URL``)."""
        import redis  # noqa: PLC0415 - only when configured

        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return cls(client, prefix=prefix)

    def __repr__(self) -> str:
        return "RedisOtpStore()"

    def _key(self, challenge_id: str) -> str:
        return f"{self._p}c:{challenge_id}"

    def put(self, challenge: StoredChallenge) -> None:
        """Keep a challenge until it expires (Redis drops it then)."""
        import time  # noqa: PLC0415

        ttl_ms = max(1, int((challenge.expires_at - time.time()) * 1000))
        key = self._key(challenge.challenge_id)
        fields = {
            "code_hash": challenge.code_hash,
            "number_key": challenge.number_key,
            "account_id": challenge.account_id,
            "masked": challenge.masked,
            "expires_at": repr(challenge.expires_at),
            "attempts": 0,
        }
        pipe = self._r.pipeline()
        pipe.delete(key)
        pipe.hset(key, mapping=fields)
        pipe.pexpire(key, ttl_ms)
        pipe.execute()

    def get(self, challenge_id: str) -> StoredChallenge | None:
        """The challenge, or None when unknown or expired."""
        raw = self._r.hgetall(self._key(challenge_id))
        if not raw:
            return None
        text = {k.decode(): v for k, v in raw.items()}
        return StoredChallenge(
            challenge_id=challenge_id,
            code_hash=bytes(text["code_hash"]),
            number_key=text["number_key"].decode(),
            account_id=text["account_id"].decode(),
            masked=text["masked"].decode(),
            expires_at=float(text["expires_at"]),
        )

    def delete(self, challenge_id: str) -> None:
        """Forget a challenge."""
        self._r.delete(self._key(challenge_id))

    def add_attempt(self, challenge_id: str) -> int:
        """Count one attempt (atomic across workers)."""
        return int(self._r.hincrby(self._key(challenge_id), "attempts", 1))

    def record(self, key: str, now: float, keep_s: float) -> None:
        """Note one event for ``key`` at ``now``."""
        zkey = f"{self._p}e:{key}"
        pipe = self._r.pipeline()
        pipe.zadd(zkey, {f"{now!r}:{secrets.token_hex(4)}": now})
        pipe.zremrangebyscore(zkey, "-inf", now - keep_s)
        pipe.expire(zkey, max(1, int(keep_s) + 1))
        pipe.execute()

    def count(self, key: str, now: float, window_s: float) -> tuple[int, float]:
        """Events for ``key`` in the last ``window_s`` seconds and the oldest one's time."""
        zkey = f"{self._p}e:{key}"
        found = self._r.zrangebyscore(zkey, f"({now - window_s!r}", "+inf", withscores=True)
        if not found:
            return 0, now
        return len(found), float(found[0][1])
