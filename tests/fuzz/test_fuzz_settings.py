"""``Settings.from_env``: any ``GEOWARDEN_*`` values give settings or one ``ConfigError``; and a
command started with them ends in one line, never an internal error."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fuzz.fuzzkit import MET, junk_text, run_cli
from geowarden.errors import ConfigError
from geowarden.settings import Settings

NAMES = [
    "GEOWARDEN_HOME", "GEOWARDEN_SNAPSHOT", "GEOWARDEN_POLICY", "GEOWARDEN_ALLOWLIST_SECRET", "GEOWARDEN_AUDIT_URL",
    "GEOWARDEN_AUDIT_RETENTION_DAYS", "GEOWARDEN_STATE_URL", "GEOWARDEN_TRUSTED_PROXIES", "GEOWARDEN_PUBLIC_URL",
    "GEOWARDEN_LOG_FORMAT", "GEOWARDEN_LOG_LEVEL", "GEOWARDEN_BIN_TABLE", "GEOWARDEN_SCREENING_DATA",
    "GEOWARDEN_PINGS", "GEOWARDEN_SPARK_MASTER", "GEOWARDEN_SPARK_CONF", "GEOWARDEN_SIGNALS_OFF",
    "GEOWARDEN_TWILIO_SID", "GEOWARDEN_TWILIO_TOKEN",
]  # fmt: skip
value = st.one_of(
    junk_text.map(lambda s: s.replace("\x00", "")),  # the environment cannot hold a NUL
    st.sampled_from(["", "NaN", "inf", "-1", "1e309", "0", "json", "WARN", "a=b c", "=x", "phone,,card", "x" * 5000,
                     "/dev/null", "/nonexistent/dir", "redis://127.0.0.1:1/0", "10.0.0.0/8, ::1/128", "1.2.3.4/33"]),
)  # fmt: skip
env = st.dictionaries(st.sampled_from(NAMES), value, max_size=5)


@given(environ=env)
def test_from_env_gives_settings_or_one_config_error(environ: dict[str, str]) -> None:
    MET["settings (from_env)"] += 1
    message = ""
    try:
        Settings.from_env(environ)
    except ConfigError as exc:
        message = exc.message
    assert "\n" not in message.strip()


@given(environ=env, command=st.sampled_from([["ip", "8.8.8.8"], ["check", "--ip", "8.8.8.8"]]))
def test_a_command_under_any_settings_ends_in_one_line(
    fuzz_env: dict[str, str], scratch: Path, environ: dict[str, str], command: list[str]
) -> None:
    environ = {**fuzz_env, **environ}
    home = environ.get("GEOWARDEN_HOME", "")
    if home.strip() in ("", "/dev/null") or "/nonexistent" in home:
        environ["GEOWARDEN_HOME"] = str(scratch / "home")  # never write outside the test's directories
    elif not Path(home.strip()).is_absolute():
        # a relative home resolves beside the test, never in the checkout
        environ["GEOWARDEN_HOME"] = str(scratch / "rel" / home)
    r = run_cli([*command, "--json", "-q"], environ, reader="settings (a command)")
    assert r.code in (0, 1, 2, 3, 4, 5), r
    if r.code not in (0, 3):
        assert r.stdout == "" and r.stderr.strip(), r
