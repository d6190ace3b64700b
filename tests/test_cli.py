"""The command-line contract of DESIGN.md, driven as a user would: in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from geowarden.intel.snapshot import Snapshot

IP_FIELDS = {"ip", "country", "asn", "org", "hosting", "vpn", "tor", "proxy", "sources"}


def run(*args: str, snapshot: Path | None, home: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")}
    env["GEOWARDEN_HOME"] = str(home)
    if snapshot is not None:
        env["GEOWARDEN_SNAPSHOT"] = str(snapshot)
    return subprocess.run(
        [sys.executable, "-m", "geowarden", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


@pytest.fixture
def tiny(tiny_snapshot: Snapshot, tmp_path: Path):  # type: ignore[no-untyped-def]
    def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run(*args, snapshot=tiny_snapshot.path, home=tmp_path, stdin=stdin)

    return _run


def no_traceback(p: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in p.stderr, p.stderr


def test_ip_json_is_one_document_in_input_order(tiny) -> None:  # type: ignore[no-untyped-def]
    p = tiny("ip", "8.8.8.8", "1.2.4.8", "2400:3200::1", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert [r["ip"] for r in doc] == ["8.8.8.8", "1.2.4.8", "2400:3200::1"]
    assert [r["country"] for r in doc] == ["US", "CN", "CN"]
    assert all(r.keys() >= IP_FIELDS for r in doc)
    assert doc[0]["asn"] == 15169
    assert isinstance(doc[0]["hosting"], bool)


def test_ip_batch_file_reports_bad_lines_and_answers_the_rest(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "ips.txt"
    f.write_text("# addresses\n8.8.8.8\n\nnot-an-ip\n1.2.4.8  # trailing comment\n")
    p = tiny("ip", "--file", str(f), "--json")
    assert p.returncode == 3
    no_traceback(p)
    assert f"{f} line 4: not an IP address: 'not-an-ip'" in p.stderr
    doc = json.loads(p.stdout)
    assert [r.get("country") for r in doc] == ["US", None, "CN"]
    assert "error" in doc[1]


def test_ip_reads_stdin(tiny) -> None:  # type: ignore[no-untyped-def]
    p = tiny("ip", "--file", "-", "--json", stdin="1.2.4.8\n8.8.8.8\n")
    assert p.returncode == 0, p.stderr
    assert [r["country"] for r in json.loads(p.stdout)] == ["CN", "US"]


def test_ip_table_output(tiny) -> None:  # type: ignore[no-untyped-def]
    p = tiny("ip", "5.1.1.1")
    assert p.returncode == 0
    assert "tor" in p.stdout and "5.1.1.1" in p.stdout


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (("ip",), "give addresses", 2),
        (("ip", "--file", "/nonexistent/file"), "cannot read /nonexistent/file", 2),
        (("check", "--ip", "1.2.3"), "not an IP address: '1.2.3'", 3),
        (("check", "--ip", "8.8.8.8", "--billing-country", "Germany"), "ISO alpha-2", 2),
        (("check", "--ip", "8.8.8.8", "--policy", "/nonexistent.yaml"), "/nonexistent.yaml: file not found", 2),
    ],
)
def test_errors_are_one_line_with_nonzero_exit(tiny, args: tuple[str, ...], message: str, code: int) -> None:  # type: ignore[no-untyped-def]
    p = tiny(*args)
    assert p.returncode == code, (p.returncode, p.stderr)
    no_traceback(p)
    assert message in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert p.stdout == ""


def test_check_json_decision(tiny) -> None:  # type: ignore[no-untyped-def]
    p = tiny("check", "--ip", "1.2.4.8", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["action"] == "block"
    assert [r["code"] for r in d["reasons"]] == ["IP_COUNTRY_RESTRICTED"]
    assert {"score", "policy_version", "decision_id"} <= d.keys()
    p = tiny("check", "--ip", "8.8.8.8", "--json")
    assert json.loads(p.stdout)["action"] != "block"


def test_check_never_echoes_personal_data(tiny) -> None:  # type: ignore[no-untyped-def]
    p = tiny("check", "--ip", "8.8.8.8", "--phone", "+8613800138000", "--email", "someone@example.com", "--json")
    assert p.returncode == 0, p.stderr
    assert "13800138000" not in p.stdout + p.stderr
    assert "someone@example.com" not in p.stdout + p.stderr


def test_bad_snapshot_setting_is_one_line(tmp_path: Path) -> None:
    p = run("ip", "8.8.8.8", snapshot=tmp_path / "nowhere", home=tmp_path)
    assert p.returncode == 5
    no_traceback(p)
    assert "not a snapshot" in p.stderr


def test_intel_info_shows_sources_and_licences(tiny) -> None:  # type: ignore[no-untyped-def]
    p = tiny("intel", "info", "--json")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert {s["name"] for s in info["sources"]} >= {"dbip-country", "tor-exits"}
    assert all("licence" in s for s in info["sources"])


def test_policy_commands(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from geowarden.policy.engine import DEFAULT_POLICY

    p = tiny("policy", "check", str(DEFAULT_POLICY), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["ok"] is True
    p = tiny("policy", "test", str(DEFAULT_POLICY))
    assert p.returncode == 0, p.stdout + p.stderr
    assert " passed, 0 failed" in p.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy: b\nrestricted: {CN: x}\nrules:\n  - name: r\n    when: ip.country ==\n    action: block\n")
    p = tiny("policy", "check", str(bad))
    assert p.returncode == 2
    no_traceback(p)
    assert f"{bad}:5: rule 'r': bad CEL at column" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = tiny("policy", "explain", "--ip", "5.3.0.1", "--json")
    doc = json.loads(p.stdout)
    assert doc["action"] == "challenge"
    assert next(r for r in doc["rules"] if r["name"] == "hosting")["fired"] is True


def test_policy_explain_explains_a_signup(tiny) -> None:  # type: ignore[no-untyped-def]
    """Issue 19 item 15: explain took no signup facts."""
    p = tiny(
        "policy", "explain", "--ip", "8.8.8.8", "--phone", "+8613800138000", "--timezone", "Asia/Shanghai",
        "--billing-country", "cn", "--email", "someone@qq.com", "--org", "Example Co", "--owner", "A. Person", "--json",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    codes = {e["code"] for e in doc["evidence"]}
    assert {"PHONE_COUNTRY_RESTRICTED", "CARD_BILLING_RESTRICTED"} <= codes
    assert next(r for r in doc["rules"] if r["name"] == "billing-restricted")["fired"] is True
    assert doc["action"] == "block"
    assert "13800138000" not in p.stdout  # the number itself is not shown


def test_allow_token_round_trip(tiny) -> None:  # type: ignore[no-untyped-def]
    p = tiny("allow", "create", "--account", "acct-9", "--days", "1", "--reason", "appeal 12", "--json")
    assert p.returncode == 0, p.stderr
    default = json.loads(p.stdout)["token"]
    blocked = json.loads(
        tiny("check", "--ip", "1.2.4.8", "--account", "acct-9", "--allow-token", default, "--json").stdout
    )
    assert blocked["action"] == "block"  # a restricted country is cleared only when the token says so
    p = tiny("allow", "create", "--account", "acct-9", "--days", "1", "--clears", "restricted", "--json")
    assert p.returncode == 0, p.stderr
    token = json.loads(p.stdout)["token"]
    v = tiny("allow", "verify", token)
    assert v.returncode == 0
    assert re.search(r"expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", v.stdout), v.stdout
    assert tiny("allow", "verify", token[:-3] + "xyz").returncode == 1
    blocked = json.loads(tiny("check", "--ip", "1.2.4.8", "--account", "acct-9", "--json").stdout)
    assert blocked["action"] == "block"
    cleared = json.loads(
        tiny("check", "--ip", "1.2.4.8", "--account", "acct-9", "--allow-token", token, "--json").stdout
    )
    assert cleared["action"] == "allow"
    assert [r["code"] for r in cleared["reasons"]] == ["ALLOWLISTED"]
    assert token not in json.dumps(cleared)


def test_test_modules_have_unique_names() -> None:
    """pytest imports test modules by basename (no __init__.py): a duplicate breaks collection."""
    from collections import Counter

    from helpers import REPO

    names = Counter(p.name for p in (REPO / "tests").rglob("test_*.py"))
    assert [n for n, k in names.items() if k > 1] == []


def test_audit_commands_with_an_unreachable_database_are_one_line_exit_2(tmp_path: Path) -> None:
    """Issue 19 item 8: an unreachable PostgreSQL was a three-line internal error with exit 70."""
    from redis_support import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")}
    env |= {
        "GEOWARDEN_HOME": str(tmp_path),
        "GEOWARDEN_AUDIT_URL": f"postgresql+psycopg://u:pw123@127.0.0.1:{free_port()}/db",
    }
    p = subprocess.run(
        [sys.executable, "-m", "geowarden", "audit", "prune", "--older-than", "1"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert p.returncode == 2, p.stderr
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "audit database" in lines[0] and "pw123" not in p.stderr
