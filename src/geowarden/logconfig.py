"""Logging set up from the settings: the ``geowarden`` logger to stderr, as text or JSON.

Called once when the CLI or the service starts (``GEOWARDEN_LOG_FORMAT``, ``GEOWARDEN_LOG_LEVEL``).
Key/values travel as ``extra``::

    log.info("pruned the audit log", extra={"deleted": 12, "days": 90.0})

- ``text``: ``2026-01-02T03:04:05Z WARNING geowarden: pruned the audit log deleted=12 days=90.0``
- ``json``: one object per line, ``{"ts": ..., "level": ..., "logger": ..., "message": ..., "deleted": 12, ...}``

stdout is never written to: a command's ``--json`` document stays the only thing there.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from geowarden.settings import Settings

LOGGER = "geowarden"
# The attributes every LogRecord has; anything else on a record came in through ``extra``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


def _stamp(record: logging.LogRecord) -> str:
    secs = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{secs}.{int(record.msecs):03d}Z"


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The key/values given to a log call through ``extra``."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{_stamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        pairs = " ".join(f"{k}={v}" for k, v in extras(record).items())
        if pairs:
            line += " " + pairs
        if record.exc_info:
            line += " " + self.formatException(record.exc_info).replace("\n", " | ")
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _stamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for k, v in extras(record).items():
            doc.setdefault(k, v)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


class _Handler(logging.StreamHandler[TextIO]):
    """Ours, so that configuring again replaces it instead of adding a second one."""


def configure_logging(settings: Settings, stream: TextIO | None = None) -> logging.Logger:
    """Send the ``geowarden`` logger to ``stream`` (stderr) in the settings' format and level;
    calling it again replaces what an earlier call set up."""
    logger = logging.getLogger(LOGGER)
    for h in [h for h in logger.handlers if isinstance(h, _Handler)]:
        logger.removeHandler(h)
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(settings.log_level)
    logger.propagate = False  # the process's own output: not also through a root handler
    return logger
