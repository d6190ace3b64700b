"""Keyed phone and payment fingerprints shared with peers: the values members of a finding share go
out only as HMACs under the agreed salt, come back in as records, and a live request whose phone
hashes to one of them gets evidence; no phone, card, account or salt in bundles, logs or errors."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from geowarden.errors import ConfigError
from geowarden.intel.build import build_snapshot
from geowarden.model import Action, Facts
from geowarden.settings import Settings
from geowarden.sharing.fingerprints import fingerprint, normalise, read_salt, salt_id, shared_values
from geowarden.signals.peer import PeerSignal
from geowarden.warden import Warden
from helpers import tiny_sources

SALT = b"agreed-between-provider-a-and-b-2026"
SHARED_PHONE = "+49 151 2345 6789"
OTHER_PHONE = "+49 151 9876 5432"
FINDINGS = [
    {"kind": "account_cluster", "subject": "cluster-1", "score": 0.82, "members": ["acct-1", "acct-2", "acct-3"],
     "evidence": {"size": 3}},
    {"kind": "infrastructure", "subject": "AS64500", "score": 0.7, "members": [], "evidence": {"accounts": 9}},
]  # fmt: skip
CONTACTS = (
    "account_id,phone,payment_fingerprint\n"
    f"acct-1,{SHARED_PHONE},CardFP-77aa\n"
    "acct-2,0049-151-23456789,cardfp-77AA\n"  # the same number and card, written differently
    f"acct-3,{OTHER_PHONE},cardfp-0001\n"
    f"acct-9,{OTHER_PHONE},cardfp-0001\n"  # shares with acct-3, but is in no finding
)


def test_normalised_values_hash_alike_and_the_salt_matters() -> None:
    assert normalise("phone", SHARED_PHONE) == normalise("phone", "0049 151 23456789") == "+4915123456789"
    assert normalise("phone", "12345") is None
    assert normalise("payment", " CardFP-77aa ") == "cardfp-77aa"
    a = fingerprint(SALT, "phone", "+4915123456789")
    assert a == fingerprint(SALT, "phone", "+4915123456789") and len(a) == 64
    assert a != fingerprint(SALT + b"x", "phone", "+4915123456789")
    assert a != fingerprint(SALT, "payment", "+4915123456789")
    assert salt_id(SALT) != salt_id(SALT + b"x") and SALT.hex() not in salt_id(SALT)


def test_only_values_members_of_a_finding_share_are_exported() -> None:
    contacts = {"acct-1": {"phone": SHARED_PHONE, "payment": "x1"}, "acct-2": {"phone": "0049151 23456789"},
                "acct-3": {"phone": OTHER_PHONE}, "acct-9": {"phone": OTHER_PHONE}}  # fmt: skip
    assert shared_values(FINDINGS, contacts) == {("phone", "+4915123456789"): 0.82}


def test_a_short_salt_is_refused_without_showing_it(tmp_path: Path) -> None:
    path = tmp_path / "salt"
    path.write_bytes(b"tiny-secret\n")
    with pytest.raises(ConfigError) as exc:
        read_salt(path)
    assert "tiny-secret" not in str(exc.value) and "16" in str(exc.value)
    path.write_bytes(SALT + b"\n")
    assert read_salt(path) == SALT


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")} | {"GEOWARDEN_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "geowarden", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "findings.json").write_text(json.dumps(FINDINGS))
    (tmp_path / "contacts.csv").write_text(CONTACTS)
    (tmp_path / "salt").write_bytes(SALT + b"\n")
    bundle = tmp_path / "bundle.json"
    p = _cli(tmp_path / "a", "indicators", "export", "--findings", str(tmp_path / "findings.json"),
             "--contacts", str(tmp_path / "contacts.csv"), "--salt-file", str(tmp_path / "salt"),
             "--out", str(bundle), "--json")  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) | {"out": ""} == {"out": "", "indicators": 1, "fingerprints": 2,
                                                  "skipped": {"account_cluster: not a network": 1}}  # fmt: skip
    return bundle, tmp_path / "salt"


def test_the_bundle_holds_no_personal_data(exported: tuple[Path, Path]) -> None:
    bundle, _ = exported
    text = bundle.read_text()
    low = text.lower()
    for secret in ("23456789", "2345 6789", "98765432", "acct-", "cardfp", SALT.decode(), "cluster-1", "+49"):
        assert secret.lower() not in low, secret
    assert f"hmac_sha256 = '{fingerprint(SALT, 'phone', '+4915123456789')}'" in text
    assert f"hmac_sha256 = '{fingerprint(SALT, 'payment', 'cardfp-77aa')}'" in text
    assert salt_id(SALT) in text


def test_round_trip_to_a_live_phone_match(
    exported: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bundle, salt = exported
    home = tmp_path / "b"
    p = _cli(home, "indicators", "import", str(bundle), "--peer", "provider-a", "--salt-file", str(salt), "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["fingerprints"] == 2 and doc["indicators"] == 1
    kept = home / "shared-indicators" / "provider-a.salt"
    assert kept.read_bytes() == SALT and kept.stat().st_mode & 0o077 == 0
    records = json.loads((home / "shared-indicators" / "provider-a.json").read_text())
    assert {r.get("kind") for r in records if r["label"] == "shared-fingerprint"} == {"phone", "payment"}

    snap = build_snapshot(tiny_sources(), tmp_path / "snap")
    caplog.set_level(logging.DEBUG, logger="geowarden")
    warden = Warden.open(Settings(home=home), snapshot=snap)
    hit = warden.decide(Facts(ip="8.8.8.8", phone="0049 151 2345 6789"))
    [ev] = [e for e in hit.evidence if e.code == "PEER_PHONE_MATCH"]
    assert ev.value == {"peers": {"provider-a": 0.82}} and ev.confidence == pytest.approx(0.82)
    assert "2345" not in ev.detail and "+49 ***" in ev.detail
    assert hit.action == Action.CHALLENGE and "shared-phone" in hit.rules
    miss = warden.decide(Facts(ip="8.8.8.8", phone=OTHER_PHONE))
    assert miss.action == Action.ALLOW and "PEER_PHONE_MATCH" not in [e.code for e in miss.evidence]
    assert "23456789" not in caplog.text and "2345 6789" not in caplog.text
    # the shared card, as the processor fingerprints it, is matched live too (case and spaces aside)
    card = warden.decide(Facts(ip="8.8.8.8", payment_fingerprint=" cardfp-77AA"))
    [ev] = [e for e in card.evidence if e.code == "PEER_PAYMENT_MATCH"]
    assert ev.value == {"peers": {"provider-a": 0.82}} and "77aa" not in ev.detail.lower()
    assert card.action == Action.CHALLENGE and "shared-phone" in card.rules
    other = warden.decide(Facts(ip="8.8.8.8", payment_fingerprint="cardfp-0000"))
    assert "PEER_PAYMENT_MATCH" not in [e.code for e in other.evidence]


def test_a_bundle_under_another_salt_is_not_matched(exported: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, _ = exported
    other = tmp_path / "other-salt"
    other.write_bytes(b"a-different-agreed-salt-0000")
    p = _cli(tmp_path / "c", "indicators", "import", str(bundle), "--peer", "p", "--salt-file", str(other), "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["fingerprints"] == 0 and doc["skipped"] == {"fingerprint under another salt": 2}


def test_fingerprints_without_a_salt_are_kept_but_not_matched(
    exported: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bundle, _ = exported
    home = tmp_path / "d"
    assert _cli(home, "indicators", "import", str(bundle), "--peer", "p").returncode == 0
    with caplog.at_level(logging.WARNING, logger="geowarden"):
        signal = PeerSignal.load(home / "shared-indicators")
    assert len(signal) == 0 and "no salt" in caplog.text


def test_export_needs_both_contacts_and_salt(tmp_path: Path) -> None:
    (tmp_path / "findings.json").write_text(json.dumps(FINDINGS))
    p = _cli(tmp_path, "indicators", "export", "--findings", str(tmp_path / "findings.json"),
             "--contacts", str(tmp_path / "findings.json"))  # fmt: skip
    assert p.returncode == 2 and "--salt-file" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_expired_fingerprints_are_not_loaded(tmp_path: Path) -> None:
    d = tmp_path / "shared-indicators"
    d.mkdir()
    (d / "p.salt").write_bytes(SALT)
    hm = fingerprint(SALT, "phone", "+4915123456789")
    base = {"label": "shared-fingerprint", "kind": "phone", "hmac": hm, "salt_id": salt_id(SALT), "confidence": 90}
    (d / "p.json").write_text(json.dumps([{**base, "valid_until": "2001-01-01T00:00:00+00:00"}]))
    assert len(PeerSignal.load(d)) == 0
    (d / "p.json").write_text(json.dumps([{**base, "valid_until": "2099-01-01T00:00:00+00:00"}]))
    assert len(PeerSignal.load(d)) == 1
