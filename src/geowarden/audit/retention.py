"""Retention: delete audited decisions older than ``GEOWARDEN_AUDIT_RETENTION_DAYS``.

The service runs a ``RetentionTask`` when the setting is given (at start, then hourly);
``geowarden audit prune`` does the same once, from the command line or a cron job.

Pruning (:func:`geowarden.audit.chain.prune_segments`) keeps the chain verifiable: it deletes
whole segments (UTC days) whose every row is older than the cutoff — decisions, review events,
chain rows and checkpoints — and keeps each segment's head, re-signed with the state ``pruned``.
A row therefore outlives the retention period by up to a day. A review event is chained when it
happens, so the verdict on a pruned decision stays until the segment of the verdict's day is
pruned in turn.

Each pass also makes the daily summaries of the last ``SUMMARY_DAYS`` closed days
(:func:`geowarden.audit.daily.refresh`: one count per day when they are up to date), so that a
report over a quarter reads summaries made as the days closed instead of summarising them first.
"""

from __future__ import annotations

import logging
import threading
import time

from geowarden.audit.daily import DAY, closed_days, refresh
from geowarden.audit.store import AuditLog

log = logging.getLogger("geowarden.audit")

HOURLY = 3600.0
SUMMARY_DAYS = 7  # closed days summarised by each pass


class RetentionTask:
    """Prunes an audit log at once and then every ``every`` seconds, in a daemon thread, until
    stopped. A pass that fails (the database is away) is logged and the next one tries again."""

    def __init__(self, audit: AuditLog, *, every: float = HOURLY) -> None:
        if audit.retention_days is None:
            raise ValueError("the audit log has no retention period to enforce")
        self.audit = audit
        self.every = every
        self.passes = 0  # completed passes
        self.deleted = 0  # decisions deleted so far
        self.summarised = 0  # daily summaries made so far
        self._stop = threading.Event()
        self._done = threading.Event()  # set after each pass (tests wait on it)
        self._thread = threading.Thread(target=self._run, name="geowarden-retention", daemon=True)

    def start(self) -> RetentionTask:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait for the pass under way (or the next one) to finish; False on timeout."""
        ok = self._done.wait(timeout)
        self._done.clear()
        return ok

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                n = self.audit.prune()
            except Exception as exc:
                log.warning("audit retention pass failed: %s", type(exc).__name__, extra={"error": str(exc)[:200]})
            else:
                self.passes += 1
                self.deleted += n
                if n:
                    log.info("pruned the audit log", extra={"deleted": n, "older_than_days": self.audit.retention_days})
            try:
                now = time.time()
                self.summarised += refresh(self.audit.engine, closed_days(now - SUMMARY_DAYS * DAY, now, now), now=now)
            except Exception as exc:
                log.warning("audit summary pass failed: %s", type(exc).__name__, extra={"error": str(exc)[:200]})
            self._done.set()
            self._stop.wait(self.every)
