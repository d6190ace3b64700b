"""Test helpers: where the shared data is, what a test may require of the machine, tiny handmade sources.

A test that needs something this machine may lack (the shared data, a server, a browser, Java)
calls :func:`require` (or :func:`missing`): it skips, except under CI (``CI=true``), where a
missing requirement is a failure. Pure logic does not need the shared data: it runs on the small
files under ``tests/fixtures`` (written for the tests) or on sources built in a fixture.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NoReturn

import pytest

from geowarden.intel.sources.base import SourceData, SourceKind, SourceMeta
from geowarden.model import Facts

REPO = Path(__file__).resolve().parents[1]
#: Small files written for the tests (never copies of the shared data).
FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: The real public data, ``../shared/data``. ``GEOWARDEN_TEST_SHARED`` points the tests elsewhere;
#: set it to a missing directory to see which tests need the shared data.
SHARED = Path(os.environ.get("GEOWARDEN_TEST_SHARED") or REPO.parent / "shared" / "data")


def missing(what: str) -> NoReturn:
    """Skip because ``what`` is missing here; under CI (``CI=true``) fail instead.

    Works in a test, in a fixture and at module level (a whole module skips).
    """
    __tracebackhide__ = True  # report the test's line, not this one
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (required under CI)")
    pytest.skip(what, allow_module_level=True)


def require(present: object, what: str) -> None:
    """Carry on when ``present`` is true; otherwise :func:`missing` (``what`` says what is missing)."""
    __tracebackhide__ = True
    if not present:
        missing(what)


def redis_up() -> bool:
    """Whether the Redis server the state tests use (127.0.0.1:6379) is answering."""
    try:
        import redis

        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=0.5).ping())
    except Exception:
        return False


def require_shared() -> Path:
    """The shared data directory (:data:`SHARED`), required as :func:`require` does."""
    __tracebackhide__ = True
    require(SHARED.is_dir(), f"shared data not found at {SHARED}")
    return SHARED


def source(name: str, kind: SourceKind, entries: list[tuple[str, Any]]) -> SourceData:
    """A handmade source: ``entries`` are (network, value) pairs."""
    src = SourceData(meta=SourceMeta(name=name, title=name, kind=kind, licence="test"))
    for net, value in entries:
        src.add_network(net, value)
    return src


def facts(**kw: Any) -> Facts:
    return Facts(**kw)


def tiny_sources() -> list[SourceData]:
    """A small, fully known world used by the unit tests."""
    asn_labels = SourceData(
        meta=SourceMeta(name="x4bnet-hosting-asn", title="asn", kind=SourceKind.ASN_LABEL, licence="test")
    )
    asn_labels.asn_labels[64500] = ("hosting", "Example Cloud")
    return [
        source(
            "dbip-country",
            SourceKind.COUNTRY,
            [
                ("1.2.4.0/22", "CN"),
                ("8.8.8.0/24", "US"),
                ("5.0.0.0/8", "DE"),
                ("2400:3200::/32", "CN"),
                ("6.6.0.0/16", "CN"),
                ("2a00::/16", "NL"),
            ],
        ),
        source("iptoasn-country", SourceKind.COUNTRY, [("6.6.0.0/16", "SG"), ("8.8.8.0/24", "US")]),
        source("ipverse-rir", SourceKind.COUNTRY, [("6.6.0.0/16", "SG"), ("1.2.0.0/16", "CN")]),
        source("geofeed", SourceKind.COUNTRY, [("5.5.5.0/24", "FR")]),
        source("dbip-asn", SourceKind.ASN, [("8.8.8.0/24", (15169, "Google LLC")), ("5.6.0.0/16", (64500, "Example"))]),
        source("tor-exits", SourceKind.LABEL, [("5.1.1.1", ("tor", "Tor")), ("2a00::1", ("tor", "Tor"))]),
        source("vpn-exits", SourceKind.LABEL, [("5.2.0.0/24", ("vpn", "examplevpn.com"))]),
        source(
            "aws", SourceKind.LABEL, [("5.3.0.0/16", ("hosting", "Amazon AWS")), ("5.3.1.0/24", ("hosting", "AWS eu"))]
        ),
        source("zscaler", SourceKind.LABEL, [("5.4.0.0/24", ("proxy", "Zscaler"))]),
        source("x4bnet-vpn-apple", SourceKind.LABEL, [("5.7.0.0/24", ("relay", "Apple iCloud Private Relay"))]),
        asn_labels,
    ]
