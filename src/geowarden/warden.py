"""The Warden: the one object the CLI, the service and the middleware drive.

::

    warden = Warden.open()                 # current snapshot (or the default) + policy
    warden.lookup("1.2.4.8")               # IPRecord
    warden.lookup_many(addresses)          # Lookups (columnar)
    warden.decide(Facts(ip="1.2.4.8"))     # Decision
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy.typing as npt

from geowarden.intel.snapshot import IPRecord, Lookups, Snapshot
from geowarden.intel.store import SnapshotStore
from geowarden.model import Decision, Evidence, Facts
from geowarden.policy.base import Policy
from geowarden.policy.default import DefaultPolicy
from geowarden.settings import Settings
from geowarden.signals import network


class Warden:
    def __init__(self, intel: Snapshot, policy: Policy | None = None) -> None:
        self.intel = intel
        self.policy: Policy = policy or DefaultPolicy()

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        snapshot: Path | None = None,
        policy: Policy | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> Warden:
        """Open the current snapshot under ``GEOWARDEN_HOME`` (building the default one the first
        time), or the snapshot directory given."""
        settings = settings or Settings.from_env()
        path = snapshot or settings.snapshot
        if path is not None:
            return cls(Snapshot.open(path), policy)
        from geowarden.intel.sources.pypi import default_sources  # noqa: PLC0415 - only on first run

        store = SnapshotStore(settings.intel_dir)
        return cls(store.open_current(default_sources=default_sources, progress=progress), policy)

    def lookup(self, ip: str) -> IPRecord:
        return self.intel.lookup(ip)

    def lookup_many(self, ips: Sequence[str] | npt.NDArray[Any]) -> Lookups:
        return self.intel.lookup_many(ips)

    def evidence(self, facts: Facts) -> list[Evidence]:
        """Everything the signals find, before the policy weighs it."""
        return network.evaluate(facts, self.intel, self.policy.restricted)

    def decide(self, facts: Facts) -> Decision:
        t0 = time.perf_counter()
        evidence = self.evidence(facts)
        verdict = self.policy.judge(evidence)
        return Decision(
            action=verdict.action,
            score=verdict.score,
            reasons=verdict.reasons,
            rules=verdict.rules,
            user_message=verdict.user_message,
            evidence=tuple(evidence),
            policy_version=self.policy.version,
            decision_id=uuid.uuid4().hex,
            elapsed_us=(time.perf_counter() - t0) * 1e6,
        )
