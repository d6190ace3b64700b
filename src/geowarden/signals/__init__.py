"""Signals: pure functions of the facts and a context, each reporting evidence (see ``codes``)."""

from __future__ import annotations

from collections.abc import Set
from typing import Protocol


class Context(Protocol):
    """What a signal reads from the Warden's signal context (``geowarden.warden.SignalContext``):
    the policy's restricted jurisdictions, and the country the ip signal placed the address in."""

    @property
    def restricted(self) -> Set[str]: ...

    @property
    def ip_country(self) -> str | None: ...
