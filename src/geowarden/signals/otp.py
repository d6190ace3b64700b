"""Step-up phone verification: one-time codes sent by SMS when a decision says ``challenge``.

::

    otp = OtpService(secret=key)                       # ConsoleSender and MemoryOtpStore by default
    ch = otp.start(phone="+49 170 1234567", account_id="acct-1")   # sends a code; ch.challenge_id
    result = otp.verify(ch.challenge_id, "123456")     # Verification(outcome=VERIFIED, ...)

- **Codes at rest are hashed**: HMAC-SHA256 under the service's secret, bound to the challenge
  id, compared in constant time. The store never holds a code or a phone number: numbers are
  kept as an HMAC pseudonym (``number_key``), which is also what rate limits count by.
- **Expiry** (10 minutes) and **attempts** (5 per challenge; the challenge is dropped after the
  last) by default; ``OtpPolicy`` changes them.
- **Rate limits** per number and per account (sliding windows: 3 codes per number per 10
  minutes and 10 a day; 5 per account an hour and 20 a day), checked before a code is sent.
  Refused with ``OtpRateLimitError`` (``retry_after`` seconds).
- **Pluggable**: ``OtpSender`` (``ConsoleSender`` for development, which masks the number;
  ``TwilioSmsSender`` and ``WebhookSmsSender`` over httpx) and ``OtpStore``
  (``MemoryOtpStore``; a Redis store implements the same five methods).
- **Time** comes from an injected clock (``time.time`` by default), so tests need no sleeping.

Nothing here logs or raises with a phone number or a code in it.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol, TextIO
from urllib.parse import quote

import httpx

from geowarden.errors import ConfigError, GeowardenError, InputError, RateLimitError
from geowarden.signals import phone

#: Not a signal of its own: the step-up action a ``challenge`` decision asks for. It emits no
#: evidence and is not in the signal registry; the name is for logs and metrics.
SIGNAL = "otp"
CODES: dict[str, tuple[str, str]] = {}
MIN_SECRET_BYTES: Final = 16


class OtpError(GeowardenError):
    """A one-time code could not be issued. Never carries the number or the code."""

    status = 503


class OtpRateLimitError(RateLimitError, OtpError):
    """Too many codes for this number or account; try again after ``retry_after`` seconds."""

    retry_after: float

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)


class OtpDeliveryError(OtpError):
    """The sender could not deliver the code (provider down, refused, misconfigured)."""


# -- policy and records ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` codes in any ``window_s`` seconds."""

    count: int
    window_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class OtpPolicy:
    digits: int = 6
    ttl_s: float = 600.0
    max_attempts: int = 5
    per_number: tuple[Limit, ...] = (Limit(3, 600.0), Limit(10, 86400.0))
    per_account: tuple[Limit, ...] = (Limit(5, 3600.0), Limit(20, 86400.0))
    message: str = "Your verification code is {code}. It expires in {minutes} minutes."

    def __post_init__(self) -> None:
        if not 4 <= self.digits <= 10:
            raise ConfigError("OTP codes have 4 to 10 digits")
        if self.ttl_s <= 0 or self.max_attempts < 1:
            raise ConfigError("OTP expiry must be positive and at least one attempt allowed")
        if "{code}" not in self.message:
            raise ConfigError("the OTP message must contain {code}")


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredChallenge:
    """What the store keeps about one challenge: no code, no number."""

    challenge_id: str
    code_hash: bytes = field(repr=False)
    number_key: str  # HMAC pseudonym of the E.164 number
    account_id: str
    masked: str  # "+86 ***"
    expires_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    """What the caller gets back from ``start``: hand ``challenge_id`` to the client."""

    challenge_id: str
    masked: str
    expires_at: float


class Outcome(enum.StrEnum):
    VERIFIED = "verified"
    WRONG_CODE = "wrong_code"
    EXPIRED = "expired"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    UNKNOWN = "unknown"  # no such challenge (never issued, already used, or dropped)


@dataclass(frozen=True, slots=True, kw_only=True)
class Verification:
    outcome: Outcome
    attempts_left: int = 0
    account_id: str | None = None
    number_key: str | None = None  # on success: the verified number's pseudonym

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.VERIFIED


# -- stores ----------------------------------------------------------------------------------


class OtpStore(Protocol):
    """Where challenges and rate-limit events live (memory here; Redis implements the same:
    ``put``/``get``/``delete`` on a hash with a TTL, ``add_attempt`` as HINCRBY, ``record`` and
    ``count`` on a sorted set of timestamps per key)."""

    def put(self, challenge: StoredChallenge) -> None: ...

    def get(self, challenge_id: str) -> StoredChallenge | None: ...

    def delete(self, challenge_id: str) -> None: ...

    def add_attempt(self, challenge_id: str) -> int:
        """Count one verification attempt; the number of attempts so far, this one included."""
        ...

    def record(self, key: str, now: float, keep_s: float) -> None:
        """Note one event for ``key`` at ``now``; events older than ``keep_s`` may be forgotten."""
        ...

    def count(self, key: str, now: float, window_s: float) -> tuple[int, float]:
        """Events for ``key`` in the last ``window_s`` seconds, and the time of the oldest of them."""
        ...


class MemoryOtpStore:
    """``OtpStore`` in this process's memory (one worker; tests and development). Thread-safe."""

    def __init__(self) -> None:
        self._challenges: dict[str, StoredChallenge] = {}
        self._attempts: dict[str, int] = {}
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def put(self, challenge: StoredChallenge) -> None:
        with self._lock:
            self._challenges[challenge.challenge_id] = challenge
            self._attempts[challenge.challenge_id] = 0

    def get(self, challenge_id: str) -> StoredChallenge | None:
        return self._challenges.get(challenge_id)

    def delete(self, challenge_id: str) -> None:
        with self._lock:
            self._challenges.pop(challenge_id, None)
            self._attempts.pop(challenge_id, None)

    def add_attempt(self, challenge_id: str) -> int:
        with self._lock:
            n = self._attempts.get(challenge_id, 0) + 1
            self._attempts[challenge_id] = n
            return n

    def record(self, key: str, now: float, keep_s: float) -> None:
        with self._lock:
            q = self._events.setdefault(key, deque())
            q.append(now)
            while q and q[0] <= now - keep_s:
                q.popleft()

    def count(self, key: str, now: float, window_s: float) -> tuple[int, float]:
        with self._lock:
            q = self._events.get(key)
            if not q:
                return 0, now
            recent = [t for t in q if t > now - window_s]
            return len(recent), (recent[0] if recent else now)

    def expire(self, now: float) -> int:
        """Drop expired challenges (a Redis store lets its TTL do this); how many were dropped."""
        with self._lock:
            old = [cid for cid, ch in self._challenges.items() if ch.expires_at <= now]
            for cid in old:
                self._challenges.pop(cid, None)
                self._attempts.pop(cid, None)
            return len(old)


# -- senders ---------------------------------------------------------------------------------


class OtpSender(Protocol):
    """Delivers one message to one number (E.164). Raises on failure; must not log the number.
    A sender that also has ``send_code(to, code)`` is given the code instead of the message."""

    def send(self, to: str, message: str) -> None: ...


class ConsoleSender:
    """Development sender: writes the message to a stream (stderr) with the number masked.

    Never use it in production: anyone who can read the stream can pass the challenge."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def send(self, to: str, message: str) -> None:
        out = self._stream or sys.stderr
        out.write(f"[geowarden dev SMS to {phone.mask(to)}] {message}\n")
        out.flush()


class TwilioSmsSender:
    """``OtpSender`` over Twilio Programmable Messaging: ``POST
    {base}/2010-04-01/Accounts/{account_sid}/Messages.json`` (form: To, From or
    MessagingServiceSid, Body) with HTTP basic auth. The number travels in the body, never in a
    URL; on failure only the HTTP status is reported (Twilio's error text may quote the number)."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_: str | None = None,
        messaging_service_sid: str | None = None,
        client: httpx.Client | None = None,
        base_url: str = "https://api.twilio.com",
        timeout: float = 5.0,
    ) -> None:
        if (from_ is None) == (messaging_service_sid is None):
            raise ConfigError("TwilioSmsSender needs exactly one of from_ or messaging_service_sid")
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{quote(account_sid, safe='')}/Messages.json"
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._sender = {"From": from_} if from_ else {"MessagingServiceSid": str(messaging_service_sid)}
        self._client = client or httpx.Client(timeout=timeout)

    def __repr__(self) -> str:
        return "TwilioSmsSender()"

    def send(self, to: str, message: str) -> None:
        try:
            resp = self._client.post(self._url, data={"To": to, **self._sender, "Body": message}, auth=self._auth)
        except httpx.HTTPError as exc:
            raise OtpDeliveryError(f"SMS provider unreachable ({type(exc).__name__})") from None
        if resp.status_code not in (200, 201):
            raise OtpDeliveryError(f"SMS provider refused the message (HTTP {resp.status_code})")


class WebhookSmsSender:
    """``OtpSender`` for an in-house SMS gateway: ``POST url`` with JSON ``{"to", "message"}`` and
    ``Authorization: Bearer <token>``; any 2xx is success."""

    def __init__(self, url: str, token: str, *, client: httpx.Client | None = None, timeout: float = 5.0) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"}
        self._client = client or httpx.Client(timeout=timeout)

    def __repr__(self) -> str:
        return "WebhookSmsSender()"

    def send(self, to: str, message: str) -> None:
        try:
            resp = self._client.post(self._url, json={"to": to, "message": message}, headers=self._headers)
        except httpx.HTTPError as exc:
            raise OtpDeliveryError(f"SMS gateway unreachable ({type(exc).__name__})") from None
        if not 200 <= resp.status_code < 300:
            raise OtpDeliveryError(f"SMS gateway refused the message (HTTP {resp.status_code})")


# -- the service -----------------------------------------------------------------------------


class OtpService:
    """Issues and checks one-time codes (see the module docstring)."""

    def __init__(
        self,
        *,
        secret: bytes,
        sender: OtpSender | None = None,
        store: OtpStore | None = None,
        policy: OtpPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigError(f"the OTP secret needs at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self.sender: OtpSender = sender or ConsoleSender()
        self.store: OtpStore = store or MemoryOtpStore()
        self.policy = policy or OtpPolicy()
        self._clock = clock
        self._lock = threading.Lock()  # check-then-record of the rate limits, within this process

    def __repr__(self) -> str:
        return f"OtpService(sender={type(self.sender).__name__}, store={type(self.store).__name__})"

    def number_key(self, e164: str) -> str:
        """The pseudonym of a number: what stores and rate limits see instead of it."""
        return hmac.new(self._secret, b"number\x00" + e164.encode(), hashlib.sha256).hexdigest()[:32]

    def _code_hash(self, challenge_id: str, code: str) -> bytes:
        return hmac.new(self._secret, f"code\x00{challenge_id}\x00{code}".encode(), hashlib.sha256).digest()

    def start(self, *, phone_number: str, account_id: str) -> Challenge:
        """Send a new code to ``phone_number`` for ``account_id``. Raises ``InputError`` for a
        number that is not valid, ``OtpRateLimitError``, or ``OtpDeliveryError``."""
        info = phone.parse(phone_number)
        if not info.valid:
            raise InputError(f"the phone number {info.masked} is not valid: {info.reason}")
        now = self._clock()
        pol = self.policy
        keys = (
            (f"otp:n:{self.number_key(info.e164)}", pol.per_number, "this number"),
            (f"otp:a:{hmac.new(self._secret, account_id.encode(), hashlib.sha256).hexdigest()[:32]}",
             pol.per_account, "this account"),
        )  # fmt: skip
        with self._lock:
            for key, limits, what in keys:
                for lim in limits:
                    n, oldest = self.store.count(key, now, lim.window_s)
                    if n >= lim.count:
                        retry = max(0.0, oldest + lim.window_s - now)
                        raise OtpRateLimitError(f"too many codes for {what}: try again in {retry:.0f} s", retry)
            for key, limits, _ in keys:
                self.store.record(key, now, max((lim.window_s for lim in limits), default=0.0))
        code = f"{secrets.randbelow(10**pol.digits):0{pol.digits}d}"
        cid = secrets.token_urlsafe(18)
        stored = StoredChallenge(
            challenge_id=cid,
            code_hash=self._code_hash(cid, code),
            number_key=self.number_key(info.e164),
            account_id=account_id,
            masked=info.masked,
            expires_at=now + pol.ttl_s,
        )
        self.store.put(stored)
        message = pol.message.format(code=code, minutes=max(1, round(pol.ttl_s / 60)))
        try:
            send_code = getattr(self.sender, "send_code", None)
            if callable(send_code):  # a provider that writes its own message around the code (Twilio Verify)
                send_code(info.e164, code)
            else:
                self.sender.send(info.e164, message)
        except Exception as exc:
            self.store.delete(cid)
            if isinstance(exc, OtpDeliveryError):
                raise
            raise OtpDeliveryError(f"the code could not be sent ({type(exc).__name__})") from None
        return Challenge(challenge_id=cid, masked=info.masked, expires_at=stored.expires_at)

    def verify(self, challenge_id: str, code: str) -> Verification:
        """Check a code. Every call counts as an attempt; success, expiry and the last failed
        attempt drop the challenge, so a code works once."""
        ch = self.store.get(challenge_id)
        if ch is None:
            return Verification(outcome=Outcome.UNKNOWN)
        if self._clock() >= ch.expires_at:
            self.store.delete(challenge_id)
            return Verification(outcome=Outcome.EXPIRED, account_id=ch.account_id)
        n = self.store.add_attempt(challenge_id)
        if n > self.policy.max_attempts:
            self.store.delete(challenge_id)
            return Verification(outcome=Outcome.TOO_MANY_ATTEMPTS, account_id=ch.account_id)
        given = "".join(code.split())
        if hmac.compare_digest(self._code_hash(challenge_id, given), ch.code_hash):
            self.store.delete(challenge_id)
            return Verification(outcome=Outcome.VERIFIED, account_id=ch.account_id, number_key=ch.number_key)
        left = self.policy.max_attempts - n
        if left <= 0:
            self.store.delete(challenge_id)
            return Verification(outcome=Outcome.TOO_MANY_ATTEMPTS, account_id=ch.account_id)
        return Verification(outcome=Outcome.WRONG_CODE, attempts_left=left, account_id=ch.account_id)
