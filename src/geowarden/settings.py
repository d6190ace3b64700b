"""Settings, read once from ``GEOWARDEN_*`` environment variables.

Only the application's edges (the CLI, the service factory, the benchmarks) call
``Settings.from_env()``; they pass the ``Settings`` down, and library code takes explicit
arguments. ``Warden.open()`` without settings falls back to ``Settings.from_env()`` (the public
API). Nothing else in the package reads the environment.

| variable | default | meaning |
|---|---|---|
| ``GEOWARDEN_HOME`` | per-user data dir (``platformdirs``) | snapshots, state, tokens, audit database |
| ``GEOWARDEN_SNAPSHOT`` | ``$GEOWARDEN_HOME/intel/current`` | a specific snapshot directory to load |
| ``GEOWARDEN_POLICY`` | the shipped ``policy/default.yaml`` | the policy file to decide with |
| ``GEOWARDEN_ALLOWLIST_SECRET`` | ``$GEOWARDEN_HOME/secrets/allowlist.key`` | HMAC secret of allowlist tokens |
| ``GEOWARDEN_AUDIT_URL`` | SQLite at ``$GEOWARDEN_HOME/audit.db`` | SQLAlchemy URL (``postgresql+psycopg://...``) |
| ``GEOWARDEN_AUDIT_RETENTION_DAYS`` | keep forever | delete audited decisions older than this (hourly) |
| ``GEOWARDEN_STATE_URL`` | ``memory`` (this process) | behaviour state: ``memory`` or ``redis://host:port/db`` |
| ``GEOWARDEN_TRUSTED_PROXIES`` | none | comma-separated addresses/networks whose forwarding headers are believed |
| ``GEOWARDEN_PUBLIC_URL`` | ``http://HOST:PORT`` of ``serve`` | base of the appeal and challenge links |
| ``GEOWARDEN_LOG_FORMAT`` | ``text`` | ``text`` or ``json`` (one object per line) on stderr |
| ``GEOWARDEN_LOG_LEVEL`` | ``INFO`` | ``DEBUG``, ``INFO``, ``WARNING``, ``ERROR`` or ``CRITICAL`` |
| ``GEOWARDEN_BIN_TABLE`` | none (the shipped scheme ranges only) | a card BIN table (CSV: a BIN and a country column) |
| ``GEOWARDEN_SCREENING_DATA`` | the installed lists | the sanctions lists (layout of ``shared/data/sanctions``) |
| ``GEOWARDEN_LATENCY_CALIBRATION`` | ``$GEOWARDEN_HOME/latency/calibration.json`` if any | latency calibration |
| ``GEOWARDEN_PINGS`` | ``../shared/data/latency/wondernetwork`` | the simulator's inter-city pings (``pings.csv``) |
| ``GEOWARDEN_SPARK_MASTER`` | ``local[2]`` | Spark master URL of ``geowarden analyze --backend spark`` |
| ``GEOWARDEN_SPARK_CONF`` | none | extra Spark settings: ``key=value`` items separated by spaces |
| ``GEOWARDEN_SIGNALS_OFF`` | none | comma-separated signal names the operator switches off (e.g. ``phone,card``) |
| ``GEOWARDEN_TWILIO_SID`` | none (offline) | Twilio key SID: the phone signal asks Twilio Lookup for line types |
| ``GEOWARDEN_TWILIO_TOKEN`` | none | its secret (needed with the SID) |
| ``PROMETHEUS_MULTIPROC_DIR`` | a fresh directory with ``serve --workers N`` (N > 1) | where workers' metrics meet |
| ``GEOWARDEN_OTP_SENDER`` | ``console`` | how challenge codes go out: ``console`` (stderr) or ``twilio-verify`` |
| ``GEOWARDEN_TWILIO_VERIFY_SERVICE`` | none | the Twilio Verify service SID (with the Twilio SID and token) |
| ``GEOWARDEN_MAX_BODY_BYTES`` | ``65536`` | the largest request body the service reads (413 above it) |
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from geowarden.errors import ConfigError

LOG_FORMATS = ("text", "json")
OTP_SENDERS = ("console", "twilio-verify")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"
_SIGNAL_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


class Secret:
    """A secret value whose ``repr`` and ``str`` never show it (so it cannot reach a traceback or a
    log line); ``reveal()`` gives it to the one place that needs it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    # Where snapshots, state, tokens, secrets and the default audit database live.
    home: Path
    # A specific snapshot directory to load instead of ``home/intel/current``.
    snapshot: Path | None = None
    # The policy file to decide with; None: the shipped default policy.
    policy: Path | None = None
    # The HMAC secret of allowlist tokens; None: ``home/secrets/allowlist.key`` (created on first use).
    allowlist_secret: Secret | None = None
    # ``text`` or ``json``: how the ``geowarden`` logger writes to stderr.
    log_format: str = "text"
    # The ``geowarden`` logger's level (a standard level name).
    log_level: str = "INFO"
    # SQLAlchemy URL of the audit log; None: SQLite at ``home/audit.db``.
    audit_url: str | None = None
    # Delete audited decisions older than this many days; None: keep forever.
    audit_retention_days: float | None = None
    # Behaviour state store: ``memory`` (None) or ``redis://host:port/db``.
    state_url: str | None = None
    # Comma-separated addresses/networks whose forwarding headers the service believes.
    trusted_proxies: str = ""
    # Base of the appeal links given to end users (no trailing slash).
    public_url: str = DEFAULT_PUBLIC_URL
    # A card BIN table (CSV) for the card signal; None: the shipped scheme ranges only.
    bin_table: Path | None = None
    # The sanctions lists directory for screening; None: screening is unavailable.
    screening_data: Path | None = None
    # The latency calibration the rtt signal uses (``geowarden latency calibrate``); None: the file at
    # ``home/latency/calibration.json`` if there is one, else none (the physical bound for every landmark).
    latency_calibration: Path | None = None
    # The directory of the inter-city ping table (``pings.csv``) the simulator reads; None: look
    # for ``../shared/data/latency/wondernetwork``.
    pings: Path | None = None
    # Spark master URL for the Spark analytics backend; None: ``local[2]``.
    spark_master: str | None = None
    # Extra Spark settings, in the order given.
    spark_conf: tuple[tuple[str, str], ...] = ()
    # Signals the operator switches off, by name (checked against the signal registry when used).
    signals_off: frozenset[str] = frozenset()
    # Twilio Lookup credentials (SID, secret) for live phone line types; None: offline data only.
    twilio: tuple[str, Secret] | None = None
    # The largest request body the service reads, in bytes (413 above it).
    max_body_bytes: int = 64 * 1024
    # Prometheus' multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``, set by ``serve --workers N``):
    # every worker's counters are added up at each scrape.
    prometheus_multiproc_dir: Path | None = None
    # How challenge codes are sent: ``console`` (stderr, development) or ``twilio-verify``.
    otp_sender: str = "console"
    # The Twilio Verify service SID (``VA...``) for ``otp_sender = twilio-verify``.
    twilio_verify_service: str | None = None

    @property
    def intel_dir(self) -> Path:
        """Where compiled snapshots live, one directory each, plus the ``current`` link."""
        return self.home / "intel"

    @property
    def screening_lists(self) -> Path | None:
        """The sanctions lists screened against: ``GEOWARDEN_SCREENING_DATA`` when set, else the
        lists ``intel build --from`` installed (``intel/sanctions/current``), else None."""
        if self.screening_data is not None:
            return self.screening_data
        cur = self.intel_dir / "sanctions" / "current"
        return cur if cur.is_dir() else None

    @property
    def default_latency_calibration(self) -> Path:
        """Where ``geowarden latency calibrate`` saves a calibration unless told otherwise."""
        return self.home / "latency" / "calibration.json"

    @property
    def latency_calibration_file(self) -> Path | None:
        """The calibration the rtt signal uses: ``GEOWARDEN_LATENCY_CALIBRATION`` when set (a missing
        file is then an error, when it is loaded), else the default file if present, else None."""
        if self.latency_calibration is not None:
            return self.latency_calibration
        default = self.default_latency_calibration
        return default if default.is_file() else None

    @property
    def downloads_dir(self) -> Path:
        return self.home / "downloads"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every ``GEOWARDEN_*`` variable (``os.environ`` unless given); a bad
        value raises a one-line ``ConfigError`` naming the variable."""
        env: Mapping[str, str] = os.environ if environ is None else environ

        def text(name: str) -> str:
            return env.get(name, "").strip()

        def path(name: str) -> Path | None:
            raw = text(name)
            return Path(raw).expanduser() if raw else None

        home = path("GEOWARDEN_HOME") or Path(platformdirs.user_data_dir("geowarden"))
        try:
            not_a_dir = home.exists() and not home.is_dir()
        except (OSError, ValueError) as exc:  # a name too long for the file system, say
            raise ConfigError(f"GEOWARDEN_HOME cannot be used: {getattr(exc, 'strerror', None) or exc}") from None
        if not_a_dir:
            raise ConfigError(f"GEOWARDEN_HOME={home} exists and is not a directory")
        log_format = text("GEOWARDEN_LOG_FORMAT").lower() or "text"
        if log_format not in LOG_FORMATS:
            raise ConfigError(f"GEOWARDEN_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
        log_level = text("GEOWARDEN_LOG_LEVEL").upper() or "INFO"
        log_level = "WARNING" if log_level == "WARN" else log_level
        if log_level not in LOG_LEVELS:
            raise ConfigError(f"GEOWARDEN_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {log_level!r}")
        secret = env.get("GEOWARDEN_ALLOWLIST_SECRET", "")
        if secret and len(secret.encode()) < 16:
            raise ConfigError("GEOWARDEN_ALLOWLIST_SECRET must be at least 16 bytes")
        twilio_sid, twilio_token = text("GEOWARDEN_TWILIO_SID"), env.get("GEOWARDEN_TWILIO_TOKEN", "").strip()
        if bool(twilio_sid) != bool(twilio_token):
            raise ConfigError("GEOWARDEN_TWILIO_SID and GEOWARDEN_TWILIO_TOKEN go together: set both or neither")
        return cls(
            twilio=(twilio_sid, Secret(twilio_token)) if twilio_sid else None,
            home=home,
            snapshot=path("GEOWARDEN_SNAPSHOT"),
            policy=path("GEOWARDEN_POLICY"),
            allowlist_secret=Secret(secret) if secret else None,
            log_format=log_format,
            log_level=log_level,
            audit_url=text("GEOWARDEN_AUDIT_URL") or None,
            audit_retention_days=_retention(text("GEOWARDEN_AUDIT_RETENTION_DAYS")),
            state_url=text("GEOWARDEN_STATE_URL") or None,
            trusted_proxies=env.get("GEOWARDEN_TRUSTED_PROXIES", ""),
            public_url=text("GEOWARDEN_PUBLIC_URL").rstrip("/") or DEFAULT_PUBLIC_URL,
            bin_table=path("GEOWARDEN_BIN_TABLE"),
            screening_data=path("GEOWARDEN_SCREENING_DATA"),
            pings=path("GEOWARDEN_PINGS"),
            latency_calibration=path("GEOWARDEN_LATENCY_CALIBRATION"),
            spark_master=text("GEOWARDEN_SPARK_MASTER") or None,
            spark_conf=_spark_conf(env.get("GEOWARDEN_SPARK_CONF", "")),
            signals_off=_signals_off(env.get("GEOWARDEN_SIGNALS_OFF", "")),
            prometheus_multiproc_dir=path("PROMETHEUS_MULTIPROC_DIR"),
            otp_sender=_choice("GEOWARDEN_OTP_SENDER", text("GEOWARDEN_OTP_SENDER").lower(), OTP_SENDERS),
            twilio_verify_service=text("GEOWARDEN_TWILIO_VERIFY_SERVICE") or None,
            max_body_bytes=_positive_int("GEOWARDEN_MAX_BODY_BYTES", text("GEOWARDEN_MAX_BODY_BYTES"), 64 * 1024),
        )


def _retention(raw: str) -> float | None:
    if not raw:
        return None
    try:
        days = float(raw)
    except ValueError:
        raise ConfigError(f"GEOWARDEN_AUDIT_RETENTION_DAYS must be a number of days, not {raw!r}") from None
    if not days > 0 or days == float("inf"):
        raise ConfigError(f"GEOWARDEN_AUDIT_RETENTION_DAYS must be a positive number of days, not {raw!r}")
    return days


def default_public_url(host: str, port: int) -> None:
    """Make ``http://host:port`` the ``GEOWARDEN_PUBLIC_URL`` of the processes started from here
    (``geowarden serve``'s workers) unless the operator set one."""
    if not os.environ.get("GEOWARDEN_PUBLIC_URL", "").strip():
        shown = f"[{host}]" if ":" in host else host
        os.environ["GEOWARDEN_PUBLIC_URL"] = f"http://{shown}:{port}"


def prepare_worker_metrics(workers: int) -> Path | None:
    """With several workers, a fresh Prometheus multiprocess directory for the processes started
    from here (``PROMETHEUS_MULTIPROC_DIR``), returned so the caller removes it at exit; None with
    one worker, or when the operator set the variable (their directory, left alone)."""
    import tempfile  # noqa: PLC0415

    if workers < 2 or os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip():
        return None
    where = Path(tempfile.mkdtemp(prefix="geowarden-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(where)
    return where


def _choice(name: str, raw: str, allowed: tuple[str, ...]) -> str:
    if not raw:
        return allowed[0]
    if raw not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {raw!r}")
    return raw


def _positive_int(name: str, raw: str, default: int) -> int:
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ConfigError(f"{name} must be a positive whole number, not {raw!r}")
    return int(raw)


def _spark_conf(raw: str) -> tuple[tuple[str, str], ...]:
    items = []
    for item in raw.split():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"GEOWARDEN_SPARK_CONF: expected key=value items separated by spaces, got {item!r}")
        items.append((key, value))
    return tuple(items)


def _signals_off(raw: str) -> frozenset[str]:
    names = set()
    for item in raw.split(","):
        name = item.strip().lower()
        if not name:
            continue
        if not _SIGNAL_NAME.match(name):
            raise ConfigError(f"GEOWARDEN_SIGNALS_OFF: {item.strip()!r} is not a signal name (e.g. phone,card)")
        names.add(name)
    return frozenset(names)


def secret_file(path: Path) -> bytes:
    """A random secret kept in ``path``: read it, or create it (mode 0600, in a 0700 folder) the
    first time. Used for the audit key and the allowlist secret under ``GEOWARDEN_HOME``."""
    import secrets  # noqa: PLC0415

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
    return path.read_text(encoding="utf-8").strip().encode()
