"""The challenge flow (issue 19, item 16): a challenged end user passes with a code by SMS and is
let through for an hour. In process through the stack a server runs, with the console sender
(development) whose output the test reads; Twilio Verify through httpx's MockTransport; the OTP
store on the real Redis server under a key prefix of its own."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from geowarden.intel.snapshot import Snapshot
from geowarden.service.app import asgi_stack, build_service, create_app
from geowarden.service.auth import TokenStore
from geowarden.service.otp_providers import RedisOtpStore, TwilioVerifySender
from geowarden.settings import Settings
from geowarden.signals.otp import OtpDeliveryError, OtpService, Outcome
from helpers import require
from service.test_limits import App

HOSTING = "5.3.0.1"  # a hosting address in the tiny snapshot: the default policy challenges it
MOBILE = "+4915123456789"
REDIS_URL = os.environ.get("GEOWARDEN_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture
def app(tiny_snapshot: Snapshot, tmp_path: Path) -> Iterator[App]:
    store = TokenStore(tmp_path / "tokens.json")
    tokens = {s: store.create([s]) for s in ("decide", "review", "admin")}
    settings = Settings(
        home=tmp_path, snapshot=Path(tiny_snapshot.path), public_url="https://ai.example", trusted_proxies="10.0.0.0/8"
    )
    service = build_service(settings)
    a = App(asgi_stack(create_app(service), service), service, tokens)
    yield a
    service.audit.close()
    a.loop.close()


def challenged(app: App, account: str = "acct-ch") -> dict[str, object]:
    d = app.request("POST", "/v1/decide", json={"ip": HOSTING, "account_id": account}).json()
    assert d["action"] == "challenge", d
    assert str(d["challenge_url"]).startswith("https://ai.example/challenge/")
    return d


def ref_of(d: dict[str, object]) -> str:
    return str(d["challenge_url"]).rsplit("/", 1)[1]


def sent_code(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert MOBILE not in err and "151 2345" not in err  # the console sender masks the number
    return re.findall(r"code is (\d{6})", err)[-1]


def test_a_challenged_user_gets_through_with_a_code(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    d = challenged(app)
    ref = ref_of(d)
    page = app.request("GET", f"/challenge/{ref}", scope=None)
    assert page.status_code == 200 and "id=phone" in page.text and "Content-Security-Policy" in page.text
    r = app.request("POST", "/v1/challenge", scope=None, json={"ref": ref, "phone": MOBILE})
    assert r.status_code == 200, r.text
    cid = r.json()["challenge_id"]
    assert MOBILE not in r.text
    code = sent_code(capsys)
    wrong = "000000" if code != "000000" else "111111"
    bad = app.request("POST", "/v1/challenge/verify", scope=None, json={"ref": ref, "challenge_id": cid, "code": wrong})
    assert bad.json() == {"verified": False, "outcome": "wrong_code", "attempts_left": 4, "allow_token": None,
                          "token_id": None, "expires_at": None}  # fmt: skip
    ok = app.request("POST", "/v1/challenge/verify", scope=None, json={"ref": ref, "challenge_id": cid, "code": code})
    assert ok.json()["verified"] is True
    token = ok.json()["allow_token"]
    assert "gw_allow=" in ok.headers["set-cookie"] and "HttpOnly" in ok.headers["set-cookie"]
    again = app.request(
        "POST", "/v1/challenge/verify", scope=None, json={"ref": ref, "challenge_id": cid, "code": code}
    )
    assert again.json()["outcome"] == "unknown"  # a code works once
    after = app.request("POST", "/v1/decide", json={"ip": HOSTING, "account_id": "acct-ch", "allow_token": token})
    assert after.json()["action"] == "allow"
    assert [(e["code"], e["value"]) for e in after.json()["reasons"]] == [("ALLOWLISTED", ok.json()["token_id"])]
    other = app.request("POST", "/v1/decide", json={"ip": HOSTING, "account_id": "someone-else", "allow_token": token})
    assert other.json()["action"] == "challenge"  # scoped to the account
    events = [e["event"] for e in app.service.audit.events(str(d["decision_id"]))]
    assert events == ["challenge"]


@pytest.mark.parametrize("phone", ["+8613800138000", "12345", "+49 30 12345678", "+1 900 555 0100"])
def test_the_phone_must_pass_the_phone_signal(app: App, phone: str) -> None:
    ref = ref_of(challenged(app))
    r = app.request("POST", "/v1/challenge", scope=None, json={"ref": ref, "phone": phone})
    assert r.status_code == 422, r.text
    assert phone not in r.text


def test_only_a_genuine_link_to_a_challenge_opens_one(app: App) -> None:
    blocked = app.request("POST", "/v1/decide", json={"ip": "1.2.4.8", "account_id": "acct-b"}).json()
    appeal_ref = str(blocked["appeal_url"]).rsplit("/", 1)[1]
    r = app.request("POST", "/v1/challenge", scope=None, json={"ref": appeal_ref, "phone": MOBILE})
    assert r.status_code == 404  # an appeal link is not a challenge link
    flow = app.app.app.app.state.challenge  # RequestGuard -> DecideFastPath -> FastAPI
    r = app.request(
        "POST", "/v1/challenge", scope=None, json={"ref": flow.ref(blocked["decision_id"]), "phone": MOBILE}
    )
    assert r.status_code == 409  # a block cannot be passed with a code
    assert app.request("GET", f"/challenge/{appeal_ref}", scope=None).status_code == 404


def test_codes_are_rate_limited_per_address(app: App) -> None:
    statuses = []
    for i in range(11):  # distinct accounts and numbers: only the address is shared
        ref = ref_of(challenged(app, f"acct-{i}"))
        r = app.request("POST", "/v1/challenge", scope=None, json={"ref": ref, "phone": f"+49151234567{i:02d}"})
        statuses.append(r.status_code)
    assert statuses == [200] * 10 + [429]


def test_the_edge_redirects_a_challenge_when_asked(app: App) -> None:
    base = {"x-geowarden-token": app.tokens["decide"], "x-forwarded-for": HOSTING, "x-geowarden-account": "acct-e"}
    plain = app.request("GET", "/ext_authz/v1/chat", scope=None, headers=base)
    assert plain.status_code == 200 and plain.headers["x-geowarden-challenge-url"].startswith("https://ai.example/")
    redirect = {**base, "x-geowarden-challenge-mode": "redirect"}
    envoy = app.request("GET", "/ext_authz/v1/chat", scope=None, headers=redirect)
    assert envoy.status_code == 302 and envoy.headers["location"].startswith("https://ai.example/challenge/")
    nginx = app.request("GET", "/auth_request", scope=None, headers=redirect)
    assert nginx.status_code == 401 and nginx.headers["x-geowarden-challenge-url"].startswith("https://ai.example/")


# -- Twilio Verify, through a fake transport --------------------------------------------------------


def test_twilio_verify_sends_our_code_and_reports_failures_without_the_number() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201 if len(seen) == 1 else 503, json={"status": "pending"})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    sender = TwilioVerifySender("VA123", "AC456", "tok", client=client, base_url="https://verify.example")
    otp = OtpService(secret=b"k" * 32, sender=sender)
    ch = otp.start(phone_number=MOBILE, account_id="a1")
    req = seen[0]
    assert str(req.url) == "https://verify.example/v2/Services/VA123/Verifications"
    form = parse_qs(req.content.decode())
    assert form["To"] == [MOBILE] and form["Channel"] == ["sms"]
    assert otp.verify(ch.challenge_id, form["CustomCode"][0]).outcome is Outcome.VERIFIED
    assert MOBILE not in str(req.url)
    with pytest.raises(OtpDeliveryError) as info:
        otp.start(phone_number=MOBILE, account_id="a1")
    assert "503" in info.value.message and "151" not in info.value.message


# -- the OTP store on Redis ---------------------------------------------------------------------------


@pytest.fixture
def redis_store() -> Iterator[RedisOtpStore]:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        require(False, f"Redis not reachable at {REDIS_URL}")
    prefix = f"gwtest19:{uuid.uuid4().hex[:8]}:"
    yield RedisOtpStore(client, prefix=prefix)
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)


def test_the_redis_store_keeps_challenges_attempts_and_limits_across_services(redis_store: RedisOtpStore) -> None:
    codes: list[str] = []

    class Outbox:
        def send(self, to: str, message: str) -> None:
            codes.append(re.findall(r"\d{6}", message)[0])

    one = OtpService(secret=b"k" * 32, sender=Outbox(), store=redis_store)
    two = OtpService(secret=b"k" * 32, sender=Outbox(), store=redis_store)  # another worker
    ch = one.start(phone_number=MOBILE, account_id="a1")
    assert two.verify(ch.challenge_id, "x").outcome is Outcome.WRONG_CODE
    v = two.verify(ch.challenge_id, codes[-1])
    assert v.outcome is Outcome.VERIFIED and v.account_id == "a1"
    assert one.verify(ch.challenge_id, codes[-1]).outcome is Outcome.UNKNOWN
    two.start(phone_number=MOBILE, account_id="a2")
    one.start(phone_number=MOBILE, account_id="a3")
    from geowarden.signals.otp import OtpRateLimitError

    with pytest.raises(OtpRateLimitError):
        two.start(phone_number=MOBILE, account_id="a4")  # 3 codes per number per 10 minutes, across workers
