"""Evidence packages over both back ends: exported by account, key or decision, personal data
hashed unless an admin asks, signed, and checked offline — a changed byte is caught."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from chain_support import KEY, decision, filled

from geowarden.audit.chain import ChainKey
from geowarden.audit.package import build_package, canonical, verify_package, write_package
from geowarden.audit.store import AuditLog, signing_seed
from geowarden.model import Facts
from geowarden.policy.engine import DEFAULT_POLICY
from geowarden.service.auth import TokenStore


def _cli(home: Path, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")} | {"GEOWARDEN_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "geowarden", *args], env=base | env, capture_output=True, text=True, timeout=120,
        check=False, input=stdin,
    )  # fmt: skip


@pytest.fixture
def home_log(url: str, tmp_path: Path) -> Iterator[tuple[Path, AuditLog, list[str]]]:
    """A GEOWARDEN_HOME and a filled log signed with that home's key (as `geowarden serve` writes)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "secrets").mkdir(mode=0o700)
    (home / "secrets" / "audit.key").write_text("a" * 64)
    log, ids = filled(url)
    log.close()
    log = AuditLog(url, key=b"a" * 64, signing_seed=signing_seed(home))
    log.append(decision(), Facts(ip="1.2.4.8"))  # today's head is now signed with the home's key
    yield home, log, ids
    log.close()


def test_an_account_package_verifies_offline_and_hides_identifiers(url: str, tmp_path: Path) -> None:
    test_log, _ = filled(url)
    try:
        doc = build_package(test_log, account="a0", policies={}, snapshot=None)
    finally:
        test_log.close()
    body = doc["body"]
    assert len(body["decisions"]) == 3 * 6  # a0: i % 7 == 0 for i < 40, on each of 3 days
    text = canonical(body)
    for raw in ('"a0"', "1.2.4.8", '"k1"'):
        assert raw not in text
    reviewed = [r for r in body["decisions"] if r["events"]]
    assert reviewed and all(r["chain"] for r in body["decisions"])
    out = tmp_path / "pkg.json"
    write_package(doc, out)
    report = verify_package(out, ChainKey(KEY).public)
    assert report["ok"], report["problems"]
    assert report["rows"] == len(body["decisions"]) + sum(len(r["events"]) for r in body["decisions"])
    assert report["include_pii"] is False


def test_the_export_command_and_verify_offline(home_log: tuple[Path, AuditLog, list[str]], tmp_path: Path) -> None:
    home, log, _ = home_log
    d = decision()
    log.append(d, Facts(ip="5.6.7.8", account_id="acct-x", api_key_id="key-x"))
    log.add_event(d.decision_id, actor="end-user", event="appeal", note="I live in Germany")
    out = tmp_path / "x.json"
    p = _cli(home, "audit", "export", "--key", "key-x", "--out", str(out), "--json", GEOWARDEN_AUDIT_URL=log.url)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["decisions"] == 1
    body = json.loads(out.read_text())["body"]
    [rec] = body["decisions"]
    assert [(e["event"], e["note"]) for e in rec["events"]] == [
        ("appeal", "[withheld: 17 characters written by the end user]")
    ]
    assert "5.6.7.8" not in out.read_text() and "acct-x" not in out.read_text()
    assert rec["decision"]["policy_version"] == "p-1" and body["policies"]["p-1"]["text"] is None
    # Offline: only the file and the public key (no database, a fresh home).
    pub = _cli(home, "audit", "key", "--json")
    key_hex = json.loads(pub.stdout)["public_key"]
    v = _cli(tmp_path / "elsewhere", "audit", "verify", str(out), "--public-key", key_hex, "--json")
    assert v.returncode == 0, v.stdout + v.stderr
    assert json.loads(v.stdout)["ok"] is True
    # One changed byte in a record: the signature no longer holds.
    tampered = tmp_path / "t.json"
    tampered.write_text(out.read_text().replace('"action": "block"', '"action": "allow"'))
    v = _cli(tmp_path / "elsewhere", "audit", "verify", str(tampered), "--public-key", key_hex)
    assert v.returncode == 1
    assert "the package signature does not verify" in v.stdout
    # Another key is not trusted.
    other = ChainKey(b"x" * 32).public.hex
    v = _cli(tmp_path / "elsewhere", "audit", "verify", str(out), "--public-key", other)
    assert v.returncode == 1 and "not the trusted" in v.stdout


def test_personal_data_needs_an_admin_token(home_log: tuple[Path, AuditLog, list[str]], tmp_path: Path) -> None:
    home, log, _ = home_log
    d = decision()
    log.append(d, Facts(ip="5.6.7.8", account_id="acct-y", api_key_id="key-y"))
    out = tmp_path / "pii.json"
    args = ("audit", "export", "--decision", d.decision_id, "--out", str(out), "--include-pii")
    p = _cli(home, *args, GEOWARDEN_AUDIT_URL=log.url)
    assert p.returncode == 2 and "needs --admin-token" in p.stderr
    review = TokenStore(home / "tokens.json").create(["review"])
    p = _cli(home, *args, "--admin-token", review, GEOWARDEN_AUDIT_URL=log.url)
    assert p.returncode == 1 and "not a valid admin-scope token" in p.stderr and not out.exists()
    admin = TokenStore(home / "tokens.json").create(["admin"])
    p = _cli(home, *args, "--admin-token", "-", "--policy", str(DEFAULT_POLICY), stdin=admin + "\n",
             GEOWARDEN_AUDIT_URL=log.url)  # fmt: skip
    assert p.returncode == 0, p.stderr
    text = out.read_text()
    assert "5.6.7.8" in text and "acct-y" in text
    v = _cli(home, "audit", "verify", str(out), "--json")
    assert v.returncode == 0 and json.loads(v.stdout)["include_pii"] is True


def test_with_personal_data_each_record_is_checked_against_the_chain(
    home_log: tuple[Path, AuditLog, list[str]], tmp_path: Path
) -> None:
    """Even a package re-signed by the key holder cannot change a record: its chained hash differs."""
    _, log, ids = home_log
    doc = build_package(log, decision=ids[-1], include_pii=True)
    body = doc["body"]
    body["decisions"][0]["decision"]["score"] = 0.01
    forged = {"body": body, "signature": log.chain_key.sign(canonical(body))}
    out = tmp_path / "forged.json"
    write_package(forged, out)
    report = verify_package(out, log.chain_key.public)
    assert [p["message"] for p in report["problems"]] == [
        f"decision {ids[-1]}: the record does not match its chained content hash (edited)"
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not an evidence package (not JSON"),
        ('{"body": {}, "signature": "00"}', "not an evidence package of format geowarden-evidence/1"),
        ("[1, 2]", "not an evidence package (no body and signature)"),
    ],
)
def test_a_malformed_package_is_refused_in_one_line(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "bad.json"
    f.write_text(content)
    p = _cli(tmp_path, "audit", "verify", str(f), "--public-key", "00" * 32)
    assert p.returncode == 3
    [line] = p.stderr.strip().splitlines()
    assert message in line


def test_nothing_to_export_says_so(home_log: tuple[Path, AuditLog, list[str]], tmp_path: Path) -> None:
    home, log, _ = home_log
    p = _cli(home, "audit", "export", "--account", "nobody", "--out", str(tmp_path / "n.json"),
             GEOWARDEN_AUDIT_URL=log.url)  # fmt: skip
    assert p.returncode == 1
    assert p.stderr.strip() == "geowarden: error: no audited decision matches; nothing written"
    p = _cli(home, "audit", "export", "--out", str(tmp_path / "n.json"), GEOWARDEN_AUDIT_URL=log.url)
    assert p.returncode == 2 and "exactly one of" in p.stderr
