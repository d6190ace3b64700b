"""Hypothesis profiles for the fuzz suite, the environment its commands run in, and the count of
generated inputs each reader met (printed at the end of the run).

``default``: a modest number of examples per test, so that the suite stays within ``make test``'s
budget; ``slow``: many more. Choose with ``HYPOTHESIS_PROFILE=slow`` (read here, only in tests).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

from fuzz.fuzzkit import MET
from geowarden.intel.snapshot import Snapshot

# No "explain" phase: it traces every line run while shrinking a failure, which makes a command
# (DuckDB, the Warden) ten times slower; the failing example is still shown.
COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
}
settings.register_profile("default", max_examples=25, **COMMON)  # type: ignore[arg-type]
settings.register_profile("slow", max_examples=400, **COMMON)  # type: ignore[arg-type]
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def fuzz_env(tiny_snapshot: Snapshot, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """``GEOWARDEN_*`` for the commands: a fresh home and the tiny snapshot."""
    home = tmp_path_factory.mktemp("fuzz-home")
    return {"GEOWARDEN_HOME": str(home), "GEOWARDEN_SNAPSHOT": str(tiny_snapshot.path)}


@pytest.fixture(scope="session")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for generated files (each example overwrites its own names)."""
    return tmp_path_factory.mktemp("fuzz-files")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not MET:
        return
    terminalreporter.section("generated inputs met per reader")
    for reader, n in sorted(MET.items()):
        terminalreporter.write_line(f"{reader:<28} {n:>6}")
    terminalreporter.write_line(f"{'total':<28} {sum(MET.values()):>6}")
