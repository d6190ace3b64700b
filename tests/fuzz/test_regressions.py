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


LOG_ROW = b'{"ts": 1767225600000, "request_id": "r1", "account_id": "a", "api_key_id": "k", "ip": "8.8.8.8"}'


def test_analyze_with_every_row_malformed_says_so_and_exits_3(fuzz_env: dict[str, str], tmp_path: Path) -> None:
    f = tmp_path / "logs.jsonl"
    f.write_bytes(b"not json\n[1]\n" + LOG_ROW.replace(b"8.8.8.8", b"nowhere") + b"\n")
    r = run_cli(["analyze", str(f), "--json", "-q"], fuzz_env)
    assert r.code == 3
    assert "no usable events in the logs (3 rows read, 3 malformed)" in r.stderr
    assert json.loads(r.stdout)["problems"]["skipped"] == 3


def test_analyze_of_an_empty_file_says_so(fuzz_env: dict[str, str], tmp_path: Path) -> None:
    f = tmp_path / "logs.jsonl"
    f.write_bytes(b"")
    r = run_cli(["analyze", str(f), "-q"], fuzz_env)
    assert r.code == 3
    assert "no usable events in the logs (0 rows read, 0 malformed)" in r.stderr


def test_analyze_drops_a_byte_order_mark(fuzz_env: dict[str, str], tmp_path: Path) -> None:
    f = tmp_path / "logs.jsonl"
    f.write_bytes(BOM + LOG_ROW + b"\r\n")
    r = run_cli(["analyze", str(f), "--json", "-q"], fuzz_env)
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["stats"]["events"] == 1


def test_analyze_of_a_parquet_file_with_a_damaged_data_page_is_one_line(
    fuzz_env: dict[str, str], tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "logs.parquet"
    pq.write_table(pa.table({"ts": [1767225600000], "request_id": ["r"], "account_id": ["a"],
                             "api_key_id": ["k"], "ip": ["8.8.8.8"]}), f)  # fmt: skip
    data = bytearray(f.read_bytes())
    data[4] ^= 0xFF  # the first data page's header: the footer still reads, the page does not
    f.write_bytes(bytes(data))
    r = run_cli(["analyze", str(f), "--json", "-q"], fuzz_env)
    assert r.code == 2
    assert r.stdout == ""
    assert f"{f}: cannot read" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_verify_location_of_an_empty_file_says_so(fuzz_env: dict[str, str], tmp_path: Path) -> None:
    f = tmp_path / "claims.jsonl"
    f.write_bytes(b"\n# nothing\n")
    r = run_cli(["verify-location", "--file", str(f), "--json"], fuzz_env)
    assert r.code == 3
    assert "no claims to verify" in r.stderr and r.stdout == ""


def test_serve_with_an_unreachable_database_is_one_line(fuzz_env: dict[str, str]) -> None:
    from redis_support import free_port

    url = f"postgresql+psycopg://someone:hunter2hunter2@127.0.0.1:{free_port()}/nothing"  # nothing listens there
    r = run_cli(["serve", "--port", "1"], {**fuzz_env, "GEOWARDEN_AUDIT_URL": url})
    assert r.code == 2
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "audit database postgresql+psycopg://someone:***@127.0.0.1" in r.stderr
    assert "hunter2" not in r.stderr


def test_verify_location_with_an_unknown_country_answers_the_other_claims(
    fuzz_env: dict[str, str], tmp_path: Path
) -> None:
    f = tmp_path / "claims.jsonl"
    f.write_bytes(
        b'{"claimed": "DE", "rtt": [[52.5, 13.4, 5]]}\n{"claimed": "XX", "rtt": [[52.5, 13.4, 5]]}\n'
        b'{"claimed": "DE", "rtt": ' + b"[" * 5000 + b"]" * 5000 + b"}\n"
        b'{"claimed": "FR", "rtt": [[48.85, 2.35, 3]]}\n'
    )
    r = run_cli(["verify-location", "--file", str(f), "--json"], fuzz_env)
    assert r.code == 3
    assert f"{f} line 2: unknown country code" in r.stderr
    assert f"{f} line 3: not valid JSON (nested too deeply)" in r.stderr
    assert [d["feasible"] for d in json.loads(r.stdout)] == [True, True]


def test_a_geowarden_home_too_long_for_the_file_system_is_one_line(fuzz_env: dict[str, str]) -> None:
    r = run_cli(["ip", "8.8.8.8"], {**fuzz_env, "GEOWARDEN_HOME": "x" * 5000})
    assert r.code == 2
    assert r.stderr.strip() == "geowarden: error: GEOWARDEN_HOME cannot be used: File name too long"


def test_policy_check_of_deeply_nested_yaml_is_one_line(fuzz_env: dict[str, str], tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_bytes(b"policy: x\nrules: " + b"[" * 3000 + b"]" * 3000 + b"\n")
    r = run_cli(["policy", "check", str(f)], fuzz_env)
    assert r.code == 2
    assert r.stderr.strip() == f"geowarden: error: {f}: not valid YAML: nested too deeply"


def test_eval_labels_with_invalid_utf8_name_the_line(fuzz_env: dict[str, str], tmp_path: Path) -> None:
    logs = tmp_path / "logs.jsonl"
    logs.write_bytes(LOG_ROW + b"\n")
    labels = tmp_path / "labels.jsonl"
    labels.write_bytes(b"\xff\xfe\n")
    r = run_cli(["eval", str(logs), "--labels", str(labels), "--json", "-q"], fuzz_env)
    assert r.code == 3
    assert f"{labels} line 1: not JSON" in r.stderr


def test_backtest_with_every_row_malformed_says_so(fuzz_env: dict[str, str], tmp_path: Path) -> None:
    import geowarden.policy

    logs = tmp_path / "logs.jsonl"
    logs.write_bytes(b"not json\n")
    policy = Path(geowarden.policy.__file__).parent / "default.yaml"
    r = run_cli(["policy", "backtest", str(logs), "--policy", str(policy), "--json", "-q"], fuzz_env)
    assert r.code == 3
    assert f"{logs} line 1: not JSON" in r.stderr
    assert "no usable events in the logs (1 rows read, 1 malformed)" in r.stderr


def test_intel_build_from_a_cloud_feed_nested_too_deeply_is_one_line(fuzz_env: dict[str, str], tmp_path: Path) -> None:
    f = tmp_path / "src" / "cloud" / "vultr-geofeed.json"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"[" * 5000 + b"]" * 5000)
    r = run_cli(["intel", "build", "--from", str(tmp_path / "src"), "--no-activate", "-q"], fuzz_env)
    assert r.code == 4
    assert len(r.stderr.strip().splitlines()) == 1 and "vultr" in r.stderr and "RecursionError" in r.stderr
