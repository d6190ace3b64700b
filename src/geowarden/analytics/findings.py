"""What an analysis reports: findings, and the context every analysis runs in.

Every analysis is a function ``run(ctx: AnalysisContext) -> list[Finding]`` written with Ibis
expressions over ``ctx.events`` (and ``ctx.accounts`` when an accounts table was given), so the
same code runs on DuckDB (embedded default) and on Spark. Only small results (groups already
reduced to candidates, edge lists) are brought into Python.

``ctx.events`` has the DESIGN.md log columns, normalised and enriched once by the loader:

=====================  ==========================================================
``ts``                  timestamp (UTC)
``ts_ms``               int64, epoch milliseconds
``request_id``          string
``account_id``          string
``api_key_id``          string
``ip``                  string
``prefix``              string: the /24 (IPv4) or /48 (IPv6) network of ``ip``
``country``             string or null: the snapshot's country of ``ip``
``asn``                 int64 or null, ``org`` string or null
``hosting``, ``vpn``,   booleans from the snapshot's labels (``relay``: a privacy relay
``proxy``, ``tor``,     such as iCloud Private Relay, told apart from VPNs)
``relay``
``client_restricted``   boolean: the client-reported time zone is used only in restricted
                        jurisdictions, or the primary Accept-Language region is restricted
                        (the live client signal's ``TZ_RESTRICTED`` / ``LANG_RESTRICTED``)
``user_agent``,         strings or null, as logged
``accept_language``,
``client_tz``, ``pop``,
``model``,
``prompt_fingerprint``
``rtt_ms``              float64 or null
``input_tokens``,       int64 or null
``output_tokens``,
``status``
=====================  ==========================================================

``ctx.accounts`` (optional): ``account_id``, ``created`` (timestamp), ``created_ms`` (int64 epoch
milliseconds), ``payment_fingerprint``, ``phone_hash``, ``email_domain``, ``organisation``,
``declared_country`` (strings or null).

The loader (``load.py``) builds both; malformed rows never reach them (they are counted and
reported with file, line and reason).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Finding kinds (the ``kind`` column of the findings table).
KINDS = (
    "key_shared",  # one API key used from many networks/countries, concurrently, or relay-shaped
    "account_cluster",  # accounts linked by payment, phone, device, prefix or creation burst
    "campaign",  # many accounts sending near-duplicate prompts in step
    "model_shift",  # a group of accounts moving to a new model at its release together
    "infrastructure",  # an ASN or prefix carrying traffic for many unrelated accounts
    "restricted_use",  # a key or account used from restricted jurisdictions (close it)
    "restricted_client",  # a key or account whose clients report a restricted clock or language behind foreign exits
)

#: Severities, lowest first: a coordinated network whose traffic shows no restricted trace
#: (``origin_hidden``) and one where a restricted origin was seen (``restricted_origin_seen``).
#: ``analyze(min_severity=...)`` and ``--min-severity`` keep the findings at or above one.
SEVERITIES = ("origin_hidden", "restricted_origin_seen")


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing an analysis flags. ``subject`` is a key id, an account id, a cluster id, an ASN
    (``AS1234``) or a prefix; ``members`` lists account ids for clusters and campaigns;
    ``evidence`` holds the numbers that made the finding (JSON-ready); ``keys`` the API keys the
    finding reaches besides its subject (an infrastructure finding's members' keys);
    ``severity`` one of ``SEVERITIES`` (every finding that needs restricted exposure to exist is
    ``restricted_origin_seen``)."""

    kind: str
    subject: str
    score: float  # 0..1
    evidence: dict[str, Any]
    members: tuple[str, ...] = ()
    severity: str = "restricted_origin_seen"
    keys: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "subject": self.subject,
            "members": list(self.members),
            "score": round(self.score, 4),
            "severity": self.severity,
            "evidence": self.evidence,
        }
        if self.keys:
            out["keys"] = list(self.keys)
        return out


def at_least(findings: list[Finding], min_severity: str) -> list[Finding]:
    """The findings of ``min_severity`` or above (a name of ``SEVERITIES``)."""
    rank = SEVERITIES.index(min_severity)
    return [f for f in findings if SEVERITIES.index(f.severity) >= rank]


@dataclass(slots=True)
class AnalysisContext:
    """What every analysis reads: the enriched events, the accounts table if given, the
    restricted jurisdictions (from the policy), and the thresholds (``settings``: analysis name ->
    parameter -> value; each analysis reads its own with ``thresholds.<Analysis>Thresholds.read``)."""

    events: Any  # ibis.Table
    accounts: Any | None  # ibis.Table | None
    backend: str  # "duckdb" | "spark"
    restricted: frozenset[str]
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    progress: Callable[[str], None] | None = None
