"""What a policy is to the rest of geowarden: evidence in, a verdict out.

The ``Warden`` talks to policies only through this protocol; ``policy.engine.PolicyEngine`` (CEL
rules from a YAML file) is the implementation.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass
from typing import Protocol

from geowarden.model import Action, Evidence, Facts


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    score: float
    reasons: tuple[Evidence, ...]  # the evidence behind the rules that fired
    rules: tuple[str, ...]
    user_message: str


class Policy(Protocol):
    @property
    def version(self) -> str:
        """Content hash of the policy, recorded in every decision."""
        ...

    @property
    def restricted(self) -> Set[str]:
        """Restricted jurisdictions (ISO alpha-2 and sub-national codes) the signals check against."""
        ...

    def judge(self, evidence: Sequence[Evidence], facts: Facts | None = None) -> Verdict: ...


#: What an end user may be told, per action: no detection details, nothing to game.
USER_MESSAGES = {
    Action.ALLOW: "",
    Action.LIMITED: "Some features are limited for your account.",
    Action.CHALLENGE: "Please verify your account to continue.",
    Action.REVIEW: "Your request is being reviewed. We will get back to you.",
    Action.BLOCK: (
        "This service is not available to you from your current location. "
        "If you believe this is a mistake, you can appeal this decision."
    ),
}
