"""Settings, read once from ``GEOWARDEN_*`` environment variables.

Only the application (CLI, service) reads these; library objects such as ``Warden`` take
explicit arguments and fall back to ``Settings.from_env()`` only when given none.

| variable | default | meaning |
|---|---|---|
| ``GEOWARDEN_HOME`` | per-user data dir (``platformdirs``) | snapshots, state, tokens, audit database |
| ``GEOWARDEN_SNAPSHOT`` | ``$GEOWARDEN_HOME/intel/current`` | a specific snapshot directory to load |
| ``GEOWARDEN_POLICY`` | the shipped ``policy/default.yaml`` | the policy file to decide with |
| ``GEOWARDEN_ALLOWLIST_SECRET`` | ``$GEOWARDEN_HOME/secrets/allowlist.key`` | HMAC secret of allowlist tokens |
| ``GEOWARDEN_AUDIT_URL`` | SQLite at ``$GEOWARDEN_HOME/audit.db`` | SQLAlchemy URL (``postgresql+psycopg://...``) |
| ``GEOWARDEN_AUDIT_RETENTION_DAYS`` | keep forever | delete audited decisions older than this |
| ``GEOWARDEN_STATE_URL`` | ``memory`` (this process) | behaviour state: ``memory`` or ``redis://host:port/db`` |
| ``GEOWARDEN_TRUSTED_PROXIES`` | none | comma-separated addresses/networks whose forwarding headers are believed |
| ``GEOWARDEN_PUBLIC_URL`` | ``http://127.0.0.1:8080`` | base of the appeal links given to end users |
| ``GEOWARDEN_LOG_FORMAT`` | ``text`` | ``text`` or ``json`` |
| ``GEOWARDEN_LOG_LEVEL`` | ``INFO`` | standard logging level name |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from geowarden.errors import ConfigError

_LOG_FORMATS = ("text", "json")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    home: Path
    snapshot: Path | None = None
    log_format: str = "text"
    log_level: str = "INFO"
    audit_url: str | None = None
    audit_retention_days: float | None = None
    state_url: str | None = None
    trusted_proxies: str = ""
    public_url: str = "http://127.0.0.1:8080"
    signals_off: frozenset[str] = frozenset()  # signals the operator switched off
    bin_table: Path | None = None  # the card signal's BIN table (CSV)
    screening_data: Path | None = None  # the sanctions lists' directory

    @property
    def intel_dir(self) -> Path:
        """Where compiled snapshots live, one directory each, plus the ``current`` link."""
        return self.home / "intel"

    @property
    def downloads_dir(self) -> Path:
        return self.home / "downloads"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home_raw = env.get("GEOWARDEN_HOME", "").strip()
        home = Path(home_raw).expanduser() if home_raw else Path(platformdirs.user_data_dir("geowarden"))
        if home.exists() and not home.is_dir():
            raise ConfigError(f"GEOWARDEN_HOME={home} exists and is not a directory")
        snap_raw = env.get("GEOWARDEN_SNAPSHOT", "").strip()
        log_format = env.get("GEOWARDEN_LOG_FORMAT", "text").strip().lower() or "text"
        if log_format not in _LOG_FORMATS:
            raise ConfigError(f"GEOWARDEN_LOG_FORMAT must be one of {', '.join(_LOG_FORMATS)}, not {log_format!r}")
        retention_raw = env.get("GEOWARDEN_AUDIT_RETENTION_DAYS", "").strip()
        try:
            retention = float(retention_raw) if retention_raw else None
        except ValueError:
            raise ConfigError(
                f"GEOWARDEN_AUDIT_RETENTION_DAYS must be a number of days, not {retention_raw!r}"
            ) from None
        off = frozenset(n.strip() for n in env.get("GEOWARDEN_SIGNALS_OFF", "").split(",") if n.strip())
        bins = env.get("GEOWARDEN_BIN_TABLE", "").strip()
        lists = env.get("GEOWARDEN_SCREENING_DATA", "").strip()
        return cls(
            signals_off=off,
            bin_table=Path(bins).expanduser() if bins else None,
            screening_data=Path(lists).expanduser() if lists else None,
            audit_url=env.get("GEOWARDEN_AUDIT_URL", "").strip() or None,
            audit_retention_days=retention,
            state_url=env.get("GEOWARDEN_STATE_URL", "").strip() or None,
            trusted_proxies=env.get("GEOWARDEN_TRUSTED_PROXIES", ""),
            public_url=env.get("GEOWARDEN_PUBLIC_URL", "").strip().rstrip("/") or "http://127.0.0.1:8080",
            home=home,
            snapshot=Path(snap_raw).expanduser() if snap_raw else None,
            log_format=log_format,
            log_level=env.get("GEOWARDEN_LOG_LEVEL", "INFO").strip().upper() or "INFO",
        )


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
