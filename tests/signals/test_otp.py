from __future__ import annotations

import io
import json
import logging
from urllib.parse import parse_qs

import httpx
import pytest

from geowarden.errors import ConfigError, InputError
from geowarden.signals import otp
from geowarden.signals.otp import (
    ConsoleSender,
    Limit,
    MemoryOtpStore,
    OtpDeliveryError,
    OtpPolicy,
    OtpRateLimitError,
    OtpService,
    Outcome,
    TwilioSmsSender,
    WebhookSmsSender,
)

SECRET = b"s" * 32
NUMBER = "+49 151 23456789"
E164 = "+4915123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Outbox:
    """A sender that keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, to: str, message: str) -> None:
        self.sent.append((to, message))

    def last_code(self) -> str:
        return "".join(ch for ch in self.sent[-1][1].split("code is ")[1][:12] if ch.isdigit())


def service(**kw: object) -> tuple[OtpService, Outbox, Clock, MemoryOtpStore]:
    box, clock, store = Outbox(), Clock(), MemoryOtpStore()
    svc = OtpService(secret=SECRET, sender=box, store=store, clock=clock, **kw)  # type: ignore[arg-type]
    return svc, box, clock, store


def test_issue_and_verify() -> None:
    svc, box, _, store = service()
    ch = svc.start(phone_number=NUMBER, account_id="acct-1")
    assert ch.masked == "+49 ***"
    assert box.sent[0][0] == E164  # the sender gets the number in E.164
    code = box.last_code()
    assert len(code) == 6
    v = svc.verify(ch.challenge_id, code)
    assert v.ok and v.outcome is Outcome.VERIFIED
    assert v.account_id == "acct-1"
    assert v.number_key == svc.number_key(E164)
    assert svc.verify(ch.challenge_id, code).outcome is Outcome.UNKNOWN, "a code works once"
    assert store.get(ch.challenge_id) is None


def test_codes_and_numbers_are_not_kept_at_rest() -> None:
    svc, box, _, store = service()
    ch = svc.start(phone_number=NUMBER, account_id="acct-1")
    code = box.last_code()
    stored = store.get(ch.challenge_id)
    assert stored is not None
    assert code.encode() not in stored.code_hash and len(stored.code_hash) == 32
    everything = repr(stored) + repr(store.__dict__)
    assert code not in everything
    assert "23456789" not in everything
    assert stored.masked == "+49 ***"
    # the hash is bound to the challenge: the same code under another id does not match
    assert svc._code_hash("other-id", code) != stored.code_hash


def test_wrong_codes_count_down_and_the_last_drops_the_challenge() -> None:
    svc, box, _, store = service(policy=OtpPolicy(max_attempts=3))
    ch = svc.start(phone_number=NUMBER, account_id="a")
    good = box.last_code()
    bad = "000000" if good != "000000" else "111111"
    assert svc.verify(ch.challenge_id, bad).attempts_left == 2
    assert svc.verify(ch.challenge_id, "not digits").attempts_left == 1
    assert svc.verify(ch.challenge_id, bad).outcome is Outcome.TOO_MANY_ATTEMPTS
    assert svc.verify(ch.challenge_id, good).outcome is Outcome.UNKNOWN
    assert store.get(ch.challenge_id) is None


def test_codes_expire() -> None:
    svc, box, clock, store = service(policy=OtpPolicy(ttl_s=60))
    ch = svc.start(phone_number=NUMBER, account_id="a")
    assert ch.expires_at == clock.now + 60
    clock.now += 59
    assert svc.verify(ch.challenge_id, "000001").outcome in (Outcome.WRONG_CODE, Outcome.VERIFIED)
    ch = svc.start(phone_number=NUMBER, account_id="a")
    code = box.last_code()
    clock.now += 60
    assert svc.verify(ch.challenge_id, code).outcome is Outcome.EXPIRED
    assert store.get(ch.challenge_id) is None


def test_spaces_in_the_code_are_forgiven() -> None:
    svc, box, _, _ = service()
    ch = svc.start(phone_number=NUMBER, account_id="a")
    code = box.last_code()
    assert svc.verify(ch.challenge_id, f" {code[:3]} {code[3:]} ").ok


def test_rate_limit_per_number() -> None:
    pol = OtpPolicy(per_number=(Limit(2, 600),), per_account=(Limit(100, 600),))
    svc, box, clock, _ = service(policy=pol)
    svc.start(phone_number=NUMBER, account_id="a")
    clock.now += 100
    svc.start(phone_number="+49 (151) 234-567-89", account_id="b")  # the same number, written otherwise
    with pytest.raises(OtpRateLimitError) as exc:
        svc.start(phone_number=NUMBER, account_id="c")
    assert exc.value.retry_after == pytest.approx(500)
    assert "23456789" not in str(exc.value)
    assert len(box.sent) == 2
    svc.start(phone_number="+49 30 123456", account_id="c")  # another number is fine
    clock.now += 501
    svc.start(phone_number=NUMBER, account_id="c")  # the window has moved on


def test_rate_limit_per_account() -> None:
    pol = OtpPolicy(per_number=(Limit(100, 600),), per_account=(Limit(2, 3600), Limit(3, 86400)))
    svc, _, clock, _ = service(policy=pol)
    svc.start(phone_number="+49 30 123456", account_id="acct")
    svc.start(phone_number="+49 30 123457", account_id="acct")
    with pytest.raises(OtpRateLimitError, match="this account"):
        svc.start(phone_number="+49 30 123458", account_id="acct")
    clock.now += 3601
    svc.start(phone_number="+49 30 123459", account_id="acct")
    clock.now += 3601
    with pytest.raises(OtpRateLimitError) as exc:  # the daily limit now
        svc.start(phone_number="+49 30 123460", account_id="acct")
    assert exc.value.retry_after == pytest.approx(86400 - 7202)
    svc.start(phone_number="+49 30 123460", account_id="other")


def test_an_invalid_number_is_refused_without_echoing_it() -> None:
    svc, box, _, _ = service()
    with pytest.raises(InputError) as exc:
        svc.start(phone_number="+49 000 1234567890", account_id="a")
    assert "1234567890" not in str(exc.value)
    assert not box.sent


def test_a_failed_delivery_leaves_no_challenge(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    class Broken:
        def send(self, to: str, message: str) -> None:
            raise ConnectionError(f"cannot reach gateway for {to}")

    store = MemoryOtpStore()
    svc = OtpService(secret=SECRET, sender=Broken(), store=store, clock=Clock())
    with pytest.raises(OtpDeliveryError) as exc:
        svc.start(phone_number=NUMBER, account_id="a")
    assert "23456789" not in str(exc.value) and exc.value.__cause__ is None
    assert not store._challenges
    assert "23456789" not in caplog.text


def test_configuration_is_checked() -> None:
    with pytest.raises(ConfigError):
        OtpService(secret=b"short")
    with pytest.raises(ConfigError):
        OtpPolicy(digits=2)
    with pytest.raises(ConfigError):
        OtpPolicy(message="no code here")
    with pytest.raises(ConfigError):
        TwilioSmsSender("AC1", "t")


def test_console_sender_masks_the_number() -> None:
    buf = io.StringIO()
    svc = OtpService(secret=SECRET, sender=ConsoleSender(buf), clock=Clock())
    svc.start(phone_number=NUMBER, account_id="a")
    out = buf.getvalue()
    assert "+49 ***" in out and "verification code is" in out
    assert "23456789" not in out and "+49 151" not in out and "+4915" not in out
    assert "23456789" not in repr(svc)


def test_console_sender_is_the_default() -> None:
    assert isinstance(OtpService(secret=SECRET).sender, ConsoleSender)


def test_twilio_sms_sender() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"sid": "SM1", "status": "queued"})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    sender = TwilioSmsSender("ACabc", "tok", from_="+15005550006", client=client)
    svc = OtpService(secret=SECRET, sender=sender, clock=Clock())
    svc.start(phone_number=NUMBER, account_id="a")
    (req,) = seen
    assert req.method == "POST"
    assert req.url.path == "/2010-04-01/Accounts/ACabc/Messages.json"
    form = parse_qs(req.content.decode())
    assert form["To"] == [E164] and form["From"] == ["+15005550006"]
    assert "verification code" in form["Body"][0]
    assert "23456789" not in str(req.url), "the number travels in the body, not the URL"
    assert req.headers["authorization"].startswith("Basic ")


def test_twilio_sms_sender_errors_do_not_quote_the_provider() -> None:
    body = {"code": 21211, "message": f"The 'To' number {E164} is not a valid phone number."}
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(400, json=body)))
    sender = TwilioSmsSender("ACabc", "tok", messaging_service_sid="MG1", client=client)
    with pytest.raises(OtpDeliveryError) as exc:
        OtpService(secret=SECRET, sender=sender, clock=Clock()).start(phone_number=NUMBER, account_id="a")
    assert "HTTP 400" in str(exc.value)
    assert "23456789" not in str(exc.value)


def test_webhook_sms_sender() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    sender = WebhookSmsSender("https://sms.internal.example/send", "tkn", client=client)
    sender.send(E164, "hello")
    (req,) = seen
    assert json.loads(req.content) == {"to": E164, "message": "hello"}
    assert req.headers["authorization"] == "Bearer tkn"
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    with pytest.raises(OtpDeliveryError, match="HTTP 500"):
        WebhookSmsSender("https://sms.internal.example/send", "tkn", client=client).send(E164, "x")

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out")

    client = httpx.Client(transport=httpx.MockTransport(down))
    with pytest.raises(OtpDeliveryError, match="ConnectTimeout"):
        WebhookSmsSender("https://sms.internal.example/send", "tkn", client=client).send(E164, "x")


def test_memory_store_expiry_sweep() -> None:
    svc, _, clock, store = service(policy=OtpPolicy(ttl_s=10))
    svc.start(phone_number=NUMBER, account_id="a")
    assert store.expire(clock.now) == 0
    assert store.expire(clock.now + 10) == 1


def test_otp_is_not_a_decision_signal() -> None:
    assert otp.SIGNAL == "otp" and otp.CODES == {}
