"""Policy: what the evidence means. CEL rules in YAML files, compiled once (see ``engine``)."""

from __future__ import annotations


def default_restricted() -> frozenset[str]:
    """The jurisdictions the shipped default policy restricts."""
    from geowarden.policy.engine import PolicyEngine  # noqa: PLC0415 - compiles the policy

    return frozenset(PolicyEngine.load().restricted)
