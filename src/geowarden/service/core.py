"""What every way into the decision service shares: the ``Service`` (one Warden, one audit log,
one token store, the metrics), how a request's token is found, and the decision's JSON.

``app.py`` builds the FastAPI application on top of this; ``fastpath.py`` answers the hot
endpoint with it directly. Neither imports the other.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.requests import cookie_parser

from geowarden.audit.store import AuditLog
from geowarden.model import Action, Decision, Facts
from geowarden.policy.allowlist import TokenSigner
from geowarden.service.auth import TokenStore
from geowarden.service.clientip import TrustedProxies, client_ip
from geowarden.service.schemas import REF_PATTERN
from geowarden.settings import Settings
from geowarden.warden import Warden

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
    registry: CollectorRegistry
    decisions: Counter
    reasons: Counter
    latency: Histogram
    unavailable: Counter

    @classmethod
    def create(cls) -> Metrics:
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
        )

    def watch_state(self, warden: Warden) -> None:
        """Gauges read from the behaviour state store at each scrape: whether it answers, and how
        many of its calls could not (each such decision ran under the ``key`` fail mode)."""
        up = Gauge("geowarden_state_up", "Whether the behaviour state store answers (1) or not (0)",
                   registry=self.registry)  # fmt: skip
        failures = Gauge("geowarden_state_failures", "State store calls that could not answer since start",
                         registry=self.registry)  # fmt: skip
        up.set_function(lambda: 1.0 if warden.state.health().get("ok") else 0.0)
        failures.set_function(lambda: float(warden.state.health().get("failures", 0)))


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
        self.trusted = TrustedProxies.parse(settings.trusted_proxies)
        self.metrics = Metrics.create()
        self.metrics.watch_state(warden)
        self._ref_key = signer.derive("appeal-ref")

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

    def decision_json(self, d: Decision) -> str:
        """The documented ``DecisionOut`` shape, serialised directly: re-validating our own output
        through pydantic costs more than the decision itself (tests check the shape)."""
        doc = d.to_dict()
        doc["appeal_url"] = self.appeal_url(d)
        return json.dumps(doc, default=str)

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
        await self.audit.submit_async(d, facts, kind=kind)  # acknowledged once durable
        return d
