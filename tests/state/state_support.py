"""What the state tests import (the fixtures live in conftest.py, which tests do not import: a
``conftest`` module name is shared by every test folder)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from geowarden.state.base import StateStore

MakeStore = Callable[..., StateStore]


def unique_prefix(tag: str = "") -> str:
    """A random key prefix, so that tests never see each other's keys."""
    return f"gwtest:{uuid.uuid4().hex[:12]}{tag}:"
