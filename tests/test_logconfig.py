"""Logging configured from the settings: text or JSON lines on stderr, never on stdout."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from geowarden.intel.snapshot import Snapshot
from geowarden.logconfig import LOGGER, configure_logging
from geowarden.settings import Settings


@pytest.fixture
def restore_logger() -> Iterator[None]:
    logger = logging.getLogger(LOGGER)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


@pytest.mark.usefixtures("restore_logger")
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_formats_carry_the_key_values(tmp_path: Path, fmt: str) -> None:
    stream = io.StringIO()
    configure_logging(Settings(home=tmp_path, log_format=fmt, log_level="INFO"), stream)
    configure_logging(Settings(home=tmp_path, log_format=fmt, log_level="INFO"), stream)  # replaces, not adds
    log = logging.getLogger("geowarden.audit")
    log.debug("not at INFO")
    log.info("pruned the audit log", extra={"deleted": 3, "older_than_days": 30.0})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    if fmt == "json":
        doc = json.loads(lines[0])
        assert doc["level"] == "INFO" and doc["logger"] == "geowarden.audit"
        assert doc["message"] == "pruned the audit log"
        assert (doc["deleted"], doc["older_than_days"]) == (3, 30.0)
        assert doc["ts"].endswith("Z")
    else:
        assert "INFO geowarden.audit: pruned the audit log deleted=3 older_than_days=30.0" in lines[0]


def run(*args: str, snapshot: Path, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")}
    base |= {"GEOWARDEN_HOME": str(home), "GEOWARDEN_SNAPSHOT": str(snapshot), **env}
    return subprocess.run(
        [sys.executable, "-m", "geowarden", *args], capture_output=True, text=True, env=base, timeout=300, check=False
    )


def test_json_logs_of_a_cli_command(tiny_snapshot: Snapshot, tmp_path: Path) -> None:
    p = run(
        "audit", "prune", "--older-than", "30", "--json",
        snapshot=tiny_snapshot.path, home=tmp_path, GEOWARDEN_LOG_FORMAT="json", GEOWARDEN_LOG_LEVEL="DEBUG",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["deleted"] == 0  # stdout: exactly one JSON document
    logged = [json.loads(line) for line in p.stderr.splitlines()]
    assert logged, "the prune command logs what it did"
    assert all({"ts", "level", "logger", "message"} <= d.keys() for d in logged)
    assert any(d["message"] == "pruned the audit log" and d["deleted"] == 0 for d in logged)


def test_a_bad_log_setting_is_one_line(tiny_snapshot: Snapshot, tmp_path: Path) -> None:
    p = run("ip", "8.8.8.8", snapshot=tiny_snapshot.path, home=tmp_path, GEOWARDEN_LOG_FORMAT="xml")
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "geowarden: error: GEOWARDEN_LOG_FORMAT must be one of text, json, not 'xml'"
    ]
    assert p.stdout == ""
