"""Fixtures for the signal tests: a small intel world for the behaviour signal.

The behaviour tests need only what the full snapshot says about a few address ranges (country,
network, hosting); here those ranges are written by hand, so the tests run without the shared data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from geowarden.intel.build import build_snapshot
from geowarden.intel.snapshot import Snapshot
from geowarden.intel.sources.base import SourceKind
from geowarden.state import StateStore, open_store
from helpers import redis_up, require, source

#: (range, country, ASN, network name) of each place the behaviour tests send requests from: what
#: the full snapshot says for these ranges, simplified to one network per range.
PLACES = [
    ("101.80.0.0/16", "CN", 4812, "China Telecom (Group)"),  # Shanghai, residential
    ("3.80.0.0/16", "US", 14618, "Amazon.com, Inc."),  # AWS us-east-1 (hosting, below)
    ("79.192.0.0/16", "DE", 3320, "Deutsche Telekom AG"),
    ("126.0.0.0/16", "JP", 17676, "SoftBank Corp."),
    ("200.160.0.0/16", "BR", 22548, "NIC.BR"),
    ("41.0.0.0/16", "ZA", 36994, "Vodacom"),
    ("1.128.0.0/16", "AU", 1221, "Telstra Limited"),
]


@pytest.fixture(scope="session")
def behaviour_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    """Three agreeing country sources, the networks, and AWS as hosting for 3.80.0.0/16."""
    countries = [(net, cc) for net, cc, _, _ in PLACES]
    sources = [
        source("dbip-country", SourceKind.COUNTRY, countries),
        source("iptoasn-country", SourceKind.COUNTRY, countries),
        source("ipverse-rir", SourceKind.COUNTRY, countries),
        source("dbip-asn", SourceKind.ASN, [(net, (asn, name)) for net, _, asn, name in PLACES]),
        source("aws", SourceKind.LABEL, [("3.80.0.0/16", ("hosting", "Amazon AWS"))]),
    ]
    return Snapshot.open(build_snapshot(sources, tmp_path_factory.mktemp("behaviour")))


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    """Both state stores: memory, and the real Redis server on 127.0.0.1:6379 under a private prefix."""
    if request.param == "memory":
        yield open_store("memory")
        return
    require(redis_up(), "Redis is not answering on 127.0.0.1:6379")
    s = open_store("redis://127.0.0.1:6379/0", prefix=f"gwtest:{uuid.uuid4().hex[:8]}:")
    yield s
    s.clear()
    s.close()
