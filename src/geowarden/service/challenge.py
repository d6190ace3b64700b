"""The challenge flow: how a challenged end user gets through, with a one-time code by SMS.

::

    edge: decision "challenge" ──► 302 to  $GEOWARDEN_PUBLIC_URL/challenge/<ref>   (HTML, no login)
    page: POST /v1/challenge        {ref, phone}          ──► a code is sent; {challenge_id, masked}
    page: POST /v1/challenge/verify {challenge_id, code}  ──► {verified, allow_token, ...}
                                                              + cookie gw_allow (the edge forwards it
                                                              as x-geowarden-allow)

``ref`` is the challenged decision's id signed with a key of its own (an appeal link cannot open a
challenge, nor the reverse); only a ``challenge`` decision with an account can be challenged. The
phone number must itself pass the phone signal (valid, a mobile, not VoIP, not from a
restricted jurisdiction). Codes are the OTP service's (``signals/otp.py``: hashed, expiring, five attempts,
rate limits per number and per account), here also per client address; challenges live in Redis
when ``GEOWARDEN_STATE_URL`` is Redis (every worker sees them), in memory otherwise. A passed
challenge issues a short-lived allowlist token for that account (one hour; it clears what any
default token clears, never a restricted jurisdiction, Tor or sanctions), recorded beside the
decision so an admin can revoke it.

Nothing here logs a phone number or a code.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from geowarden.audit.review import IssuedToken
from geowarden.errors import ConfigError, InputError
from geowarden.model import Facts
from geowarden.signals.otp import Limit, OtpRateLimitError, OtpService, OtpStore

if TYPE_CHECKING:
    from geowarden.service.core import Service

TOKEN_SECONDS = 3600  # a passed challenge clears the account for this long
PER_ADDRESS = (Limit(10, 3600.0), Limit(30, 86400.0))  # codes per client address
#: Phone evidence that makes a number unusable for verification.
UNUSABLE_PHONE = frozenset({"PHONE_INVALID", "PHONE_VOIP", "PHONE_COUNTRY_RESTRICTED"})
#: Line types that receive an SMS (the phone signal's PHONE_TYPE).
SMS_TYPES = frozenset({"mobile", "fixed_line_or_mobile"})
_REF = re.compile(r"^[0-9a-f]{32}\.[0-9a-f]{24}$")
COOKIE = "gw_allow"


class ChallengeStart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ref: str = Field(pattern=_REF.pattern, description="The signed reference from the challenge link")
    phone: str = Field(min_length=4, max_length=32, description="E.164 number to send the code to (never stored)")


class ChallengeStarted(BaseModel):
    challenge_id: str
    masked: str = Field(description="The number, masked (+49 ***)")
    expires_at: float


class ChallengeVerify(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ref: str = Field(pattern=_REF.pattern, description="The same reference as for the start")
    challenge_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    code: str = Field(min_length=4, max_length=16)


class ChallengeResult(BaseModel):
    verified: bool
    outcome: str = Field(description="verified, wrong_code, expired, too_many_attempts or unknown")
    attempts_left: int = 0
    allow_token: str | None = Field(default=None, description="On success: send it as x-geowarden-allow")
    token_id: str | None = None
    expires_at: float | None = None


class ChallengeFlow:
    """Starts and checks challenges for one Service (see the module)."""

    def __init__(self, service: Service, otp: OtpService) -> None:
        self.service = service
        self.otp = otp
        self._ref_key = service.signer.derive("challenge-ref")

    def ref(self, decision_id: str) -> str:
        mac = hmac.new(self._ref_key, decision_id.encode(), hashlib.sha256).hexdigest()[:24]
        return f"{decision_id}.{mac}"

    def check_ref(self, ref: str) -> str | None:
        if not _REF.match(ref):
            return None
        decision_id, _, mac = ref.partition(".")
        return decision_id if hmac.compare_digest(mac, self.ref(decision_id).partition(".")[2]) else None

    def url(self, decision_id: str) -> str:
        return f"{self.service.settings.public_url}/challenge/{self.ref(decision_id)}"

    def start(self, ref: str, phone_number: str, address: str | None) -> ChallengeStarted:
        """Check the reference, the number and the address's rate, then send a code."""
        decision_id = self.check_ref(ref)
        rec = self.service.audit.get(decision_id) if decision_id else None
        if rec is None:
            raise HTTPException(status_code=404, detail="unknown or damaged challenge link")
        if rec.action != "challenge" or not rec.account_id:
            raise HTTPException(status_code=409, detail="this decision cannot be passed with a code")
        evidence = self.service.warden.evidence(Facts(phone=phone_number))
        kinds = {str(e.value.get("type")) for e in evidence if e.code == "PHONE_TYPE" and isinstance(e.value, dict)}
        if {e.code for e in evidence} & UNUSABLE_PHONE or not kinds & SMS_TYPES:
            raise InputError("this phone number cannot be used for verification; use a mobile number")
        if address:
            self._address_limit(address)
        ch = self.otp.start(phone_number=phone_number, account_id=rec.account_id)
        return ChallengeStarted(challenge_id=ch.challenge_id, masked=ch.masked, expires_at=ch.expires_at)

    def _address_limit(self, address: str) -> None:
        store: OtpStore = self.otp.store
        key = "otp:ip:" + hmac.new(self._ref_key, address.encode(), hashlib.sha256).hexdigest()[:32]
        now = time.time()
        for lim in PER_ADDRESS:
            n, oldest = store.count(key, now, lim.window_s)
            if n >= lim.count:
                retry = max(0.0, oldest + lim.window_s - now)
                raise OtpRateLimitError(f"too many codes from this address: try again in {retry:.0f} s", retry)
        store.record(key, now, max(lim.window_s for lim in PER_ADDRESS))

    def verify(self, ref: str, challenge_id: str, code: str) -> ChallengeResult:
        """Check a code; on success issue the account's short-lived allowlist token."""
        decision_id = self.check_ref(ref)
        if decision_id is None:
            raise HTTPException(status_code=404, detail="unknown or damaged challenge link")
        v = self.otp.verify(challenge_id, code)
        if not v.ok or not v.account_id:
            return ChallengeResult(verified=False, outcome=v.outcome.value, attempts_left=v.attempts_left)
        subject = f"account:{v.account_id}"
        token_id = secrets.token_hex(8)
        now = time.time()
        token = self.service.signer.issue(
            subject, seconds=TOKEN_SECONDS, reason="challenge passed", token_id=token_id, now=now
        )
        issued = IssuedToken(token_id, subject, now, int(now) + TOKEN_SECONDS, ())
        self.service.reviews.record_token(issued, decision_id=decision_id, actor="end-user")
        return ChallengeResult(
            verified=True,
            outcome="verified",
            allow_token=token,
            token_id=token_id,
            expires_at=float(int(now) + TOKEN_SECONDS),
        )


def build_flow(service: Service) -> ChallengeFlow:
    """The flow as the settings configure it: the sender (``GEOWARDEN_OTP_SENDER``) and the store
    (Redis with a Redis ``GEOWARDEN_STATE_URL``, memory otherwise)."""
    settings = service.settings
    store: OtpStore | None = None
    url = settings.state_url or ""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from geowarden.service.otp_providers import RedisOtpStore  # noqa: PLC0415

        store = RedisOtpStore.from_url(url)
    sender: Any = None
    if settings.otp_sender == "twilio-verify":
        from geowarden.service.otp_providers import TwilioVerifySender  # noqa: PLC0415

        if settings.twilio is None or not settings.twilio_verify_service:
            raise ConfigError(
                "GEOWARDEN_OTP_SENDER=twilio-verify needs GEOWARDEN_TWILIO_VERIFY_SERVICE, GEOWARDEN_TWILIO_SID "
                "and GEOWARDEN_TWILIO_TOKEN"
            )
        sid, token = settings.twilio
        sender = TwilioVerifySender(settings.twilio_verify_service, sid, token.reveal())
    otp = OtpService(secret=service.signer.derive("otp"), sender=sender, store=store)
    return ChallengeFlow(service, otp)


def add_routes(app: FastAPI, service: Service, flow: ChallengeFlow) -> None:
    """``GET /challenge/{ref}`` (the page), ``POST /v1/challenge``, ``POST /v1/challenge/verify``."""
    errors: dict[int | str, dict[str, Any]] = {
        400: {"description": "The body is not JSON"},
        404: {"description": "Unknown or damaged challenge link"},
        409: {"description": "This decision is not a challenge (or has no account)"},
        413: {"description": "The body is larger than GEOWARDEN_MAX_BODY_BYTES"},
        415: {"description": "The body is not sent as application/json"},
        429: {"description": "Too many codes for this number, account or address (Retry-After)"},
        503: {"description": "The code could not be sent"},
    }

    @app.post("/v1/challenge", response_model=ChallengeStarted, responses=errors, tags=["challenge"])
    async def challenge_start(body: ChallengeStart, request: Request) -> ChallengeStarted:
        """Send a one-time code to the end user's phone for a challenged decision (no login)."""
        peer = request.client.host if request.client else None
        from geowarden.service.clientip import client_ip  # noqa: PLC0415

        address = client_ip(peer, {k.lower(): v for k, v in request.headers.items()}, service.trusted)
        return await asyncio.to_thread(flow.start, body.ref, body.phone, address)

    @app.post(
        "/v1/challenge/verify",
        response_model=ChallengeResult,
        responses={k: v for k, v in errors.items() if k in (400, 404, 413, 415)},
        tags=["challenge"],
    )
    async def challenge_verify(body: ChallengeVerify) -> JSONResponse:
        """Check the code; on success the answer carries a short-lived allowlist token for the
        account, also set as the ``gw_allow`` cookie for a browser."""
        result = await asyncio.to_thread(flow.verify, body.ref, body.challenge_id, body.code)
        resp = JSONResponse(result.model_dump())
        if result.allow_token:
            secure = service.settings.public_url.startswith("https://")
            resp.set_cookie(
                COOKIE, result.allow_token, max_age=TOKEN_SECONDS, httponly=True, samesite="lax", secure=secure
            )
        return resp

    @app.get("/challenge/{ref}", response_class=HTMLResponse, include_in_schema=False)
    async def challenge_page(ref: Annotated[str, Path(max_length=80)]) -> HTMLResponse:
        from geowarden.service.pages import challenge_page as page  # noqa: PLC0415

        decision_id = flow.check_ref(ref)
        rec = await asyncio.to_thread(service.audit.get, decision_id) if decision_id else None
        usable = rec is not None and rec.action == "challenge" and bool(rec.account_id)
        return HTMLResponse(page(ref if usable else None), status_code=200 if usable else 404)
