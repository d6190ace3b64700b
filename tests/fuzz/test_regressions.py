"""Plain regression tests for the bugs the fuzz suite found (one case each, no generation)."""

from __future__ import annotations

import json
from pathlib import Path

from fuzz.fuzzkit import BOM, run_cli


def test_ip_file_with_a_nul_byte_reports_that_line_and_answers_the_others(
    fuzz_env: dict[str, str], tmp_path: Path
) -> None:
    f = tmp_path / "ips.txt"
    f.write_bytes(b"8.8.8.8\n1.2.\x003.4\n1.2.4.8\n")
    r = run_cli(["ip", "--file", str(f), "--json"], fuzz_env)
    assert r.code == 3
    assert f"{f} line 2: not an IP address" in r.stderr
    doc = json.loads(r.stdout)
    assert [d.get("country") for d in doc] == ["US", None, "CN"]


def test_ip_file_starting_with_a_byte_order_mark(fuzz_env: dict[str, str], tmp_path: Path) -> None:
    f = tmp_path / "ips.txt"
    f.write_bytes(BOM + b"8.8.8.8\r\n1.2.4.8\r\n")
    r = run_cli(["ip", "--file", str(f), "--json"], fuzz_env)
    assert r.code == 0, r.stderr
    assert [d["country"] for d in json.loads(r.stdout)] == ["US", "CN"]


def test_ip_stdin_with_invalid_utf8_reports_the_line(fuzz_env: dict[str, str]) -> None:
    r = run_cli(["ip", "--file", "-", "--json"], fuzz_env, stdin=b"8.8.8.8\n\xff\xfe\n1.2.4.8\n")
    assert r.code == 3
    assert "stdin line 2: not an IP address" in r.stderr
    assert [d.get("country") for d in json.loads(r.stdout)] == ["US", None, "CN"]


def test_ip_file_with_nothing_to_look_up_says_so(fuzz_env: dict[str, str], tmp_path: Path) -> None:
    f = tmp_path / "ips.txt"
    f.write_bytes(b"# only a comment\n\n")
    r = run_cli(["ip", "--file", str(f), "--json"], fuzz_env)
    assert r.code == 3
    assert "no addresses to look up" in r.stderr
    assert r.stdout == ""
