"""No phone number, card digits or email address in any log line, error, evidence or output.

Decisions run with personal facts in process (logs captured at DEBUG) and through the command
line (stdout, stderr); the raw values must appear nowhere, and the evidence must carry only the
masked forms (``+86 ***``, the BIN's first 6 digits, ``***@qq.com``).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from geowarden.intel.snapshot import Snapshot
from geowarden.model import Facts
from geowarden.policy.engine import PolicyEngine
from geowarden.signals import phone
from geowarden.signals.registry import configure
from geowarden.warden import Warden
from helpers import facts

PHONE = "+86 138 0013 8000"
PHONE_DIGITS = ("13800138000", "138 0013 8000", "0013 8000")
CARD_BIN = "62220212"  # an 8-digit BIN: only "622202" may be shown
PAN = "6222021234567890123"
EMAIL = "li.wei.secret@qq.com"
SECRETS = (*PHONE_DIGITS, CARD_BIN, PAN, "1234567890", EMAIL, "li.wei.secret")


def assert_clean(text: str) -> None:
    for s in SECRETS:
        assert s not in text, f"personal data {s!r} leaked"


def personal_facts(**kw: object) -> Facts:
    base: dict[str, object] = {
        "ip": "8.8.8.8",
        "phone": PHONE,
        "card_bin": CARD_BIN,
        "billing_country": "DE",
        "email": EMAIL,
        "timezone": "Asia/Shanghai",
        "accept_language": "zh-CN,zh;q=0.9",
        "account_id": "acct-1",
    }
    base.update(kw)
    return facts(**base)


def test_decisions_in_process(tiny_snapshot: Snapshot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    w = Warden(tiny_snapshot, PolicyEngine.load())
    d = w.decide(personal_facts())
    doc = d.to_dict()
    ev = {e["code"]: e for e in doc["evidence"]}
    assert ev["PHONE_COUNTRY_RESTRICTED"]["detail"].startswith("+86 ***")
    assert ev["CARD_ISSUER"]["value"]["bin"] == "622202"
    assert ev["EMAIL_PROVIDER_RESTRICTED"]["detail"].startswith("***@qq.com")
    assert_clean(json.dumps(doc, ensure_ascii=False))
    assert_clean(repr(d))
    assert_clean(caplog.text)
    explained = PolicyEngine.load().explain(list(d.evidence), personal_facts())
    assert_clean(json.dumps(explained, ensure_ascii=False, default=str))


def test_a_full_card_number_in_process_is_refused_without_trace(
    tiny_snapshot: Snapshot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    w = Warden(tiny_snapshot, PolicyEngine.load())
    d = w.decide(personal_facts(card_bin=PAN))
    (down,) = [e for e in d.evidence if e.code == "SIGNAL_UNAVAILABLE"]
    assert down.value == "card" and "InputError" in down.detail
    assert "signal card could not answer: InputError" in caplog.text
    assert_clean(json.dumps(d.to_dict(), ensure_ascii=False) + repr(d) + caplog.text)


def test_live_lookup_and_its_failures(tiny_snapshot: Snapshot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    answers = iter([httpx.Response(200, json={"line_type_intelligence": {"type": "mobile"}}), httpx.Response(500)])
    client = httpx.Client(transport=httpx.MockTransport(lambda r: next(answers)))
    live = phone.PhoneSignal(phone.TwilioLookup("AC1", "tok", client=client))
    w = Warden(tiny_snapshot, PolicyEngine.load(), signals=configure(phone_lookup=live.provider))
    d1, d2 = w.decide(personal_facts()), w.decide(personal_facts())
    assert any(e.source == "twilio-lookup" for e in d1.evidence)
    assert any(e.code == "SIGNAL_UNAVAILABLE" and e.value == "phone-lookup" for e in d2.evidence)
    assert "HTTP Request" in caplog.text  # httpx did log its requests: redacted
    assert_clean(caplog.text + json.dumps([d1.to_dict(), d2.to_dict()], ensure_ascii=False))


def test_the_otp_flow(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    from geowarden.signals.otp import OtpService

    caplog.set_level(logging.DEBUG)
    svc = OtpService(secret=b"k" * 32)
    ch = svc.start(phone_number=PHONE, account_id="acct-1")
    out = capsys.readouterr()
    assert "+86 ***" in out.err
    assert_clean(out.out + out.err + caplog.text + repr(ch) + repr(svc.store.get(ch.challenge_id)))


# -- through the command line --------------------------------------------------------------------


def run_cli(*args: str, snapshot: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")}
    env |= {"GEOWARDEN_HOME": str(home), "GEOWARDEN_SNAPSHOT": str(snapshot), "GEOWARDEN_LOG_LEVEL": "DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "geowarden", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


CLI_FACTS = (
    "--ip", "8.8.8.8", "--phone", PHONE, "--card-bin", CARD_BIN, "--billing-country", "DE", "--email", EMAIL,
    "--timezone", "Asia/Shanghai", "--accept-language", "zh-CN,zh;q=0.9",
)  # fmt: skip


def test_cli_check_json(tiny_snapshot: Snapshot, tmp_path: Path) -> None:
    p = run_cli("check", *CLI_FACTS, "--json", snapshot=tiny_snapshot.path, home=tmp_path)
    assert p.returncode == 0, p.stderr
    assert_clean(p.stdout + p.stderr)
    doc = json.loads(p.stdout)
    assert doc["action"] != "allow"
    masked = {e["code"]: e for e in doc["evidence"]}
    assert masked["PHONE_COUNTRY"]["detail"] == "+86 *** is a number of CN"
    assert masked["CARD_ISSUER"]["value"] == {"bin": "622202", "scheme": "unionpay", "country": None}
    assert masked["EMAIL_COUNTRY"]["detail"].startswith("***@qq.com")


def test_cli_check_text(tiny_snapshot: Snapshot, tmp_path: Path) -> None:
    p = run_cli("check", *CLI_FACTS, snapshot=tiny_snapshot.path, home=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "+86 ***" in p.stdout
    assert_clean(p.stdout + p.stderr)


def test_cli_refuses_a_full_card_number(tiny_snapshot: Snapshot, tmp_path: Path) -> None:
    for pan in (PAN, "6222 0212 3456 7890 123"):
        p = run_cli("check", "--ip", "8.8.8.8", "--card-bin", pan, "--json", snapshot=tiny_snapshot.path, home=tmp_path)
        assert p.returncode == 3
        assert p.stdout == ""
        assert p.stderr.count("\n") == 1 and "full card number" in p.stderr and "Traceback" not in p.stderr
        assert_clean(p.stderr)
        assert "7890" not in p.stderr


def test_cli_phone_and_time_zone_are_not_allowed(tiny_snapshot: Snapshot, tmp_path: Path) -> None:
    """The issue's acceptance command: not allow, and the reasons name both signals."""
    p = run_cli(
        "check", "--ip", "8.8.8.8", "--phone", "+8613800138000", "--timezone", "Asia/Shanghai", "--json",
        snapshot=tiny_snapshot.path, home=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["action"] != "allow"
    reasons = {e["code"] for e in doc["reasons"]}
    assert {"PHONE_COUNTRY_RESTRICTED", "TZ_RESTRICTED"} <= reasons
    assert "13800138000" not in p.stdout + p.stderr
