"""What every way into the decision service shares: the ``Service`` (one Warden, one audit log,
one token store, the metrics), how a request's token is found, and the decision's JSON.

``app.py`` builds the FastAPI application on top of this; ``fastpath.py`` answers the hot
endpoint with it directly. Neither imports the other.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import cookie_parser

from geowarden.audit.review import ReviewBook
from geowarden.audit.store import AuditLog
from geowarden.errors import GeowardenError, SourceError
from geowarden.model import Action, Decision, Facts
from geowarden.policy.allowlist import TokenSigner
from geowarden.service.auth import TokenStore
from geowarden.service.clientip import TrustedProxies, client_ip
from geowarden.service.schemas import REF_PATTERN
from geowarden.settings import Settings
from geowarden.warden import Warden

log = logging.getLogger("geowarden.service")
COOKIE = "gw_token"  # the dashboard's login cookie (HttpOnly), holding a review token
_REF = re.compile(REF_PATTERN)


def token_of(headers: Mapping[str, str]) -> str | None:
    """The API token a request carries: ``Authorization: Bearer``, else ``x-geowarden-token``,
    else the dashboard's login cookie. ``headers`` answers lower-case names."""
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    cookie = headers.get("cookie")
    return headers.get("x-geowarden-token") or (cookie_parser(cookie).get(COOKIE) if cookie else None)


@dataclass(slots=True)
class Metrics:
    """The service's Prometheus metrics.

    Counters and the latency histogram live in ``registry``; gauges read at scrape time (the state
    store's health) in ``live``. With several worker processes (``multiprocess_dir``, the
    ``PROMETHEUS_MULTIPROC_DIR`` that ``geowarden serve --workers N`` sets up) every worker writes
    its counters to files there and any worker's ``/metrics`` adds up all of them, so a scrape
    counts every decision whichever worker answers it."""

    registry: CollectorRegistry
    decisions: Counter
    reasons: Counter
    latency: Histogram
    unavailable: Counter
    malformed: Counter
    unacknowledged: Counter
    live: CollectorRegistry = field(default_factory=CollectorRegistry)
    multiprocess_dir: Path | None = None

    def exposition(self) -> bytes:
        """The text a scrape gets: every worker's counters, this worker's live gauges."""
        if self.multiprocess_dir is not None:
            merged = CollectorRegistry()
            MultiProcessCollector(merged, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
            return generate_latest(merged) + generate_latest(self.live)
        return generate_latest(self.registry) + generate_latest(self.live)

    @classmethod
    def create(cls, multiprocess_dir: Path | None = None) -> Metrics:
        reg = CollectorRegistry()
        return cls(
            reg,
            Counter(
                "geowarden_decisions_total", "Decisions by action and endpoint", ["action", "endpoint"], registry=reg
            ),
            Counter(
                "geowarden_decision_reasons_total", "Reasons (evidence codes) behind decisions", ["code"], registry=reg
            ),
            Histogram(
                "geowarden_decision_seconds",
                "Time to decide, signals and policy, excluding the audit commit",
                buckets=(25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 50e-3),
                registry=reg,
            ),
            Counter(
                "geowarden_signal_unavailable_total",
                "Signals that could not answer (fail modes)",
                ["signal"],
                registry=reg,
            ),
            Counter(
                "geowarden_edge_malformed_total",
                "Edge requests denied because the forwarded client address was not an IP address",
                ["endpoint"],
                registry=reg,
            ),
            Counter(
                "geowarden_unacknowledged_total",
                "Decisions answered 503 because the audit log could not be written (fail closed)",
                registry=reg,
            ),
            multiprocess_dir=multiprocess_dir,
        )

    def watch_state(self, warden: Warden) -> None:
        """Gauges read from the behaviour state store at each scrape: whether it answers, and how
        many of its calls could not (each such decision ran under the ``key`` fail mode). A
        collector, not ``Gauge`` objects: in multiprocess mode those would also write per-process
        files that the merged scrape would report a second time."""
        self.live.register(_StateCollector(warden))


class _StateCollector(Collector):
    """The state store's health as two gauges, read once per scrape."""

    def __init__(self, warden: Warden) -> None:
        self.warden = warden

    def collect(self) -> Iterator[GaugeMetricFamily]:
        health = self.warden.state.health()
        yield GaugeMetricFamily(
            "geowarden_state_up",
            "Whether the behaviour state store answers (1) or not (0)",
            value=1.0 if health.get("ok") else 0.0,
        )
        yield GaugeMetricFamily(
            "geowarden_state_failures",
            "State store calls that could not answer since start",
            value=float(health.get("failures", 0)),
        )


class Service:
    """What the routes share."""

    def __init__(
        self, warden: Warden, audit: AuditLog, tokens: TokenStore, settings: Settings, signer: TokenSigner
    ) -> None:
        self.warden = warden
        self.audit = audit
        self.tokens = tokens
        self.settings = settings
        self.signer = signer
        self.reviews = ReviewBook(audit.engine, audit.chain_key if audit.chained else None)
        warden.revocations = self.reviews  # a reopened review's tokens stop clearing at once
        self.trusted = TrustedProxies.parse(settings.trusted_proxies)
        self.metrics = Metrics.create(settings.prometheus_multiproc_dir)
        self.metrics.watch_state(warden)
        self._ref_key = signer.derive("appeal-ref")
        #: decision id -> challenge page URL; set when the challenge routes are added (app.py).
        self.challenge_link: Callable[[str], str] | None = None

    def screening_ready(self) -> bool:
        """Whether sanctions lists are configured (GEOWARDEN_SCREENING_DATA); /v1/screen needs them."""
        path = self.settings.screening_lists
        return path is not None and path.is_dir()

    def appeal_ref(self, decision_id: str) -> str:
        mac = hmac.new(self._ref_key, decision_id.encode(), hashlib.sha256).hexdigest()[:24]
        return f"{decision_id}.{mac}"

    def check_ref(self, ref: str) -> str | None:
        if not _REF.match(ref):
            return None
        decision_id, _, mac = ref.partition(".")
        good = self.appeal_ref(decision_id).partition(".")[2]
        return decision_id if mac and hmac.compare_digest(mac, good) else None

    def appeal_url(self, d: Decision) -> str | None:
        if d.action != Action.BLOCK:
            return None
        return f"{self.settings.public_url}/appeal/{self.appeal_ref(d.decision_id)}"

    def with_client(self, facts: Facts, peer: str | None, headers: Mapping[str, str]) -> Facts:
        """``facts`` with the connection's client address when they name none (``headers`` with
        lower-case names; forwarding headers count only from a trusted proxy)."""
        if facts.ip is not None:
            return facts
        ip = client_ip(peer, headers, self.trusted)
        return facts if ip is None else replace(facts, ip=ip)

    def challenge_url(self, d: Decision, facts: Facts) -> str | None:
        """For a challenge of an account: the page where the end user passes it with a code."""
        if d.action != Action.CHALLENGE or not facts.account_id or self.challenge_link is None:
            return None
        return self.challenge_link(d.decision_id)

    def decision_json(self, d: Decision, facts: Facts | None = None) -> str:
        """The documented ``DecisionOut`` shape, serialised directly: re-validating our own output
        through pydantic costs more than the decision itself (tests check the shape)."""
        doc = d.to_dict()
        doc["appeal_url"] = self.appeal_url(d)
        doc["challenge_url"] = self.challenge_url(d, facts) if facts is not None else None
        return json.dumps(doc, default=str)

    def fail_mode(self, signal: str) -> str:
        """The active policy's fail mode for ``signal`` (open when the policy has none)."""
        spec = getattr(self.warden.policy, "spec", None)
        return str(spec.fail_mode(signal)) if spec is not None else "open"

    def audit_ok(self) -> bool:
        """Whether the audit database answers (a decision is acknowledged only once written there)."""
        try:
            with self.audit.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except Exception:  # any failure to reach it is "down"; the reason goes to the log
            log.warning("health: the audit database does not answer", exc_info=False)
            return False
        return True

    async def health(self, *, timeout: float = 2.0) -> tuple[dict[str, Any], int]:
        """The health document and its HTTP status: ``ok`` (200), ``degraded`` (200 while every
        dependency that is down fails open; 503 when one fails closed), naming each one down.

        The audit log always fails closed (no decision is acknowledged unless written); the state
        store follows the policy's fail mode for the ``key`` signal."""

        async def probe(fn: Any, default: Any) -> Any:
            try:
                return await asyncio.wait_for(asyncio.to_thread(fn), timeout)
            except TimeoutError:
                return default

        state = await probe(self.warden.state.health, {"kind": "?", "ok": False})
        audit_ok = await probe(self.audit_ok, False)
        down: list[dict[str, str]] = []
        if not audit_ok:
            down.append({"dependency": "audit", "fail_mode": "closed", "detail": "the audit database does not answer"})
        if not state.get("ok"):
            mode = self.fail_mode("key")
            down.append(
                {
                    "dependency": "state",
                    "fail_mode": mode,
                    "detail": f"the {state.get('kind')} state store does not answer",
                }
            )
        closed = [d for d in down if d["fail_mode"] == "closed"]
        doc = {
            "status": "degraded" if down else "ok",
            "down": down,
            "snapshot": self.warden.intel.id,
            "policy": self.warden.policy.version,
            "audit_written": self.audit.written,
            "state": state,
        }
        return doc, 503 if closed else 200

    async def decide(self, facts: Facts, *, endpoint: str, kind: str = "request") -> Decision:
        t0 = time.perf_counter()
        d = self.warden.decide(facts)
        self.metrics.latency.observe(time.perf_counter() - t0)
        self.metrics.decisions.labels(d.action.value, endpoint).inc()
        for e in d.reasons:
            self.metrics.reasons.labels(e.code).inc()
        for e in d.evidence:
            if e.code == "SIGNAL_UNAVAILABLE":
                self.metrics.unavailable.labels(str(e.value)).inc()
        try:
            await self.audit.submit_async(d, facts, kind=kind)  # acknowledged once durable
        except GeowardenError:
            raise
        except Exception as exc:  # the database refused or is gone: fail closed, say why, never acknowledge
            self.metrics.unacknowledged.inc()
            log.warning("decision not acknowledged: the audit log cannot be written (%s)", type(exc).__name__)
            raise SourceError("the audit log cannot be written: the decision was not acknowledged") from None
        return d
