"""Settings: every GEOWARDEN_* variable parsed, bad values refused in one line naming the variable,
secrets masked, and nothing in the package but settings.py reading the environment."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from geowarden.errors import ConfigError
from geowarden.settings import DEFAULT_PUBLIC_URL, Secret, Settings

SRC = Path(__file__).resolve().parents[1] / "src" / "geowarden"

# (variable, raw value, field, parsed value)
CASES: list[tuple[str, str, str, Any]] = [
    ("GEOWARDEN_SNAPSHOT", "/srv/snap", "snapshot", Path("/srv/snap")),
    ("GEOWARDEN_POLICY", "/etc/gw/policy.yaml", "policy", Path("/etc/gw/policy.yaml")),
    ("GEOWARDEN_ALLOWLIST_SECRET", "s" * 32, "allowlist_secret", Secret("s" * 32)),
    ("GEOWARDEN_AUDIT_URL", " postgresql+psycopg://u@db/audit ", "audit_url", "postgresql+psycopg://u@db/audit"),
    ("GEOWARDEN_AUDIT_RETENTION_DAYS", "90", "audit_retention_days", 90.0),
    ("GEOWARDEN_AUDIT_RETENTION_DAYS", "0.5", "audit_retention_days", 0.5),
    ("GEOWARDEN_STATE_URL", "redis://127.0.0.1:6379/0", "state_url", "redis://127.0.0.1:6379/0"),
    ("GEOWARDEN_TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1", "trusted_proxies", "10.0.0.0/8,127.0.0.1"),
    ("GEOWARDEN_PUBLIC_URL", "https://gw.example.com/", "public_url", "https://gw.example.com"),
    ("GEOWARDEN_LOG_FORMAT", "JSON", "log_format", "json"),
    ("GEOWARDEN_LOG_LEVEL", "debug", "log_level", "DEBUG"),
    ("GEOWARDEN_LOG_LEVEL", "warn", "log_level", "WARNING"),
    ("GEOWARDEN_BIN_TABLE", "/data/bins.csv", "bin_table", Path("/data/bins.csv")),
    ("GEOWARDEN_SCREENING_DATA", "/data/sanctions", "screening_data", Path("/data/sanctions")),
    ("GEOWARDEN_PINGS", "/data/pings", "pings", Path("/data/pings")),
    ("GEOWARDEN_LATENCY_CALIBRATION", "~/cal.json", "latency_calibration", Path("~/cal.json").expanduser()),
    ("GEOWARDEN_SPARK_MASTER", "spark://h:7077", "spark_master", "spark://h:7077"),
    (
        "GEOWARDEN_SPARK_CONF",
        "spark.executor.memory=8g  spark.sql.shuffle.partitions=400",
        "spark_conf",
        (("spark.executor.memory", "8g"), ("spark.sql.shuffle.partitions", "400")),
    ),
    ("GEOWARDEN_SIGNALS_OFF", "phone, Card,,screening", "signals_off", frozenset({"phone", "card", "screening"})),
    ("GEOWARDEN_MAX_BODY_BYTES", "1048576", "max_body_bytes", 1048576),
    ("GEOWARDEN_OTP_SENDER", "Twilio-Verify", "otp_sender", "twilio-verify"),
    ("GEOWARDEN_TWILIO_VERIFY_SERVICE", " VA0123 ", "twilio_verify_service", "VA0123"),
]

DEFAULTS: dict[str, Any] = {
    "snapshot": None,
    "policy": None,
    "allowlist_secret": None,
    "log_format": "text",
    "log_level": "INFO",
    "audit_url": None,
    "audit_retention_days": None,
    "state_url": None,
    "trusted_proxies": "",
    "public_url": DEFAULT_PUBLIC_URL,
    "bin_table": None,
    "screening_data": None,
    "pings": None,
    "latency_calibration": None,
    "spark_master": None,
    "spark_conf": (),
    "signals_off": frozenset(),
    "twilio": None,
    "max_body_bytes": 65536,
    "otp_sender": "console",
    "twilio_verify_service": None,
}
#: Variables that only make sense together (tested below rather than one at a time).
PAIRED = {"GEOWARDEN_TWILIO_SID", "GEOWARDEN_TWILIO_TOKEN"}

# (variable, bad value, part of the message)
BAD: list[tuple[str, str, str]] = [
    ("GEOWARDEN_LOG_FORMAT", "xml", "one of text, json"),
    ("GEOWARDEN_LOG_LEVEL", "LOUD", "one of DEBUG"),
    ("GEOWARDEN_AUDIT_RETENTION_DAYS", "ninety", "a number of days"),
    ("GEOWARDEN_AUDIT_RETENTION_DAYS", "-1", "positive"),
    ("GEOWARDEN_AUDIT_RETENTION_DAYS", "0", "positive"),
    ("GEOWARDEN_AUDIT_RETENTION_DAYS", "nan", "positive"),
    ("GEOWARDEN_ALLOWLIST_SECRET", "short", "at least 16 bytes"),
    ("GEOWARDEN_SPARK_CONF", "spark.ui.enabled", "key=value"),
    ("GEOWARDEN_SPARK_CONF", "=x", "key=value"),
    ("GEOWARDEN_SIGNALS_OFF", "phone,ca rd", "not a signal name"),
    ("GEOWARDEN_SIGNALS_OFF", "phone;card", "not a signal name"),
    ("GEOWARDEN_MAX_BODY_BYTES", "0", "positive whole number"),
    ("GEOWARDEN_MAX_BODY_BYTES", "64k", "positive whole number"),
    ("GEOWARDEN_OTP_SENDER", "carrier-pigeon", "one of console, twilio-verify"),
]


def read(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"GEOWARDEN_HOME": str(tmp_path), **env})


@pytest.mark.parametrize(("var", "raw", "field", "want"), CASES)
def test_each_variable_is_parsed(tmp_path: Path, var: str, raw: str, field: str, want: Any) -> None:
    settings = read(tmp_path, **{var: raw})
    assert getattr(settings, field) == want
    others = {k: v for k, v in DEFAULTS.items() if k != field}
    assert {k: getattr(settings, k) for k in others} == others


def test_defaults(tmp_path: Path) -> None:
    settings = read(tmp_path)
    assert settings.home == tmp_path
    assert {k: getattr(settings, k) for k in DEFAULTS} == DEFAULTS
    assert settings.intel_dir == tmp_path / "intel"


def test_every_variable_is_covered_and_documented() -> None:
    """The cases cover every variable settings.py reads, and its docstring table lists each."""
    source = (SRC / "settings.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    read_vars = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"GEOWARDEN_[A-Z_]+", node.value)
    }
    assert {v for v, *_ in CASES} | {"GEOWARDEN_HOME"} | PAIRED == read_vars
    doc = ast.get_docstring(tree) or ""
    assert all(f"``{v}``" in doc for v in read_vars)
    readme = (SRC.parents[1] / "README.md").read_text(encoding="utf-8")
    assert all(f"`{v}`" in readme for v in read_vars)


def test_home_must_be_a_directory(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="GEOWARDEN_HOME"):
        Settings.from_env({"GEOWARDEN_HOME": str(f)})


@pytest.mark.parametrize(("var", "raw", "message"), BAD)
def test_bad_values_are_one_line_naming_the_variable(tmp_path: Path, var: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        read(tmp_path, **{var: raw})
    text = info.value.message
    assert var in text and message in text
    assert "\n" not in text


def test_the_secret_never_shows(tmp_path: Path) -> None:
    secret = "correct-horse-battery-staple"
    settings = read(tmp_path, GEOWARDEN_ALLOWLIST_SECRET=secret)
    assert secret not in repr(settings) and secret not in str(settings)
    assert secret not in f"{settings.allowlist_secret}" and "****" in repr(settings.allowlist_secret)
    assert settings.allowlist_secret is not None and settings.allowlist_secret.reveal() == secret


def test_settings_from_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOWARDEN_HOME", str(tmp_path))
    monkeypatch.setenv("GEOWARDEN_LOG_LEVEL", "error")
    assert Settings.from_env().log_level == "ERROR"


ENV_NAMES = ("environ", "getenv", "environb", "getenvb")


def _reads_environment(tree: ast.AST) -> list[int]:
    """Lines that touch ``os.environ``/``os.getenv`` (as attributes or imported by name)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os":
            hit = node.attr in ENV_NAMES
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            hit = any(a.name in ENV_NAMES for a in node.names)
        else:
            hit = False
        if hit:
            lines.append(node.lineno)
    return lines


def test_only_settings_reads_the_environment() -> None:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel == "settings.py":
            continue
        lines = _reads_environment(ast.parse(path.read_text(encoding="utf-8")))
        if lines:
            found[rel] = lines
    assert found == {}


def test_twilio_credentials_go_together_and_stay_secret(tmp_path: Path) -> None:
    token = "0123456789abcdef0123456789abcdef"
    settings = read(tmp_path, GEOWARDEN_TWILIO_SID="SK123", GEOWARDEN_TWILIO_TOKEN=token)
    assert settings.twilio is not None and settings.twilio[0] == "SK123"
    assert settings.twilio[1].reveal() == token and token not in repr(settings)
    for alone in ({"GEOWARDEN_TWILIO_SID": "SK123"}, {"GEOWARDEN_TWILIO_TOKEN": token}):
        with pytest.raises(ConfigError, match="GEOWARDEN_TWILIO_SID and GEOWARDEN_TWILIO_TOKEN go together"):
            read(tmp_path, **alone)


def test_twilio_settings_switch_the_live_phone_lookup_on(tmp_path: Path) -> None:
    from geowarden.signals.phone import PhoneSignal
    from geowarden.warden import configured_signals

    def phone_of(settings: Settings) -> PhoneSignal:
        (signal,) = [s for s in configured_signals(settings) if s.name == "phone"]
        assert isinstance(signal, PhoneSignal)
        return signal

    assert phone_of(read(tmp_path)).provider is None
    live = phone_of(read(tmp_path, GEOWARDEN_TWILIO_SID="SK1", GEOWARDEN_TWILIO_TOKEN="t" * 32)).provider
    assert live is not None and live.name == "twilio-lookup" and "t" * 32 not in repr(live)
    off = [s.name for s in configured_signals(read(tmp_path, GEOWARDEN_SIGNALS_OFF="phone,email"))]
    assert "phone" not in off and "email" not in off and "ip" in off


def test_serve_names_its_own_port_in_links_unless_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19 item 11: appeal links pointed at port 8080 whatever --port said."""
    from geowarden.settings import default_public_url

    monkeypatch.delenv("GEOWARDEN_PUBLIC_URL", raising=False)
    monkeypatch.setenv("GEOWARDEN_HOME", str(tmp_path))
    default_public_url("127.0.0.1", 9123)
    assert Settings.from_env().public_url == "http://127.0.0.1:9123"
    monkeypatch.setenv("GEOWARDEN_PUBLIC_URL", "https://ai.example")
    default_public_url("127.0.0.1", 9124)
    assert Settings.from_env().public_url == "https://ai.example"
