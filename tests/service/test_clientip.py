from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geowarden.errors import ConfigError
from geowarden.service.clientip import TrustedProxies, client_ip

TRUSTED = TrustedProxies.parse("10.0.0.0/8, 192.0.2.7, 2001:db8::/32")

CASES = [
    # peer, headers, expected client
    ("203.0.113.9", {"x-forwarded-for": "1.2.4.8"}, "203.0.113.9"),  # untrusted peer: header ignored
    ("10.1.1.1", {"x-forwarded-for": "1.2.4.8"}, "1.2.4.8"),
    ("10.1.1.1", {"x-forwarded-for": "1.2.4.8, 10.2.2.2"}, "1.2.4.8"),  # skip trusted hops from the right
    ("10.1.1.1", {"x-forwarded-for": "6.6.6.6, 1.2.4.8, 10.2.2.2"}, "1.2.4.8"),  # a forged leftmost entry is ignored
    ("10.1.1.1", {"x-forwarded-for": "garbage, 1.2.4.8"}, "1.2.4.8"),
    ("10.1.1.1", {"x-forwarded-for": "1.2.4.8, garbage"}, "10.1.1.1"),  # a broken hop: trust stops there
    ("10.1.1.1", {}, "10.1.1.1"),
    ("10.1.1.1", {"forwarded": 'for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8::1]:4711"'}, "192.0.2.60"),
    ("10.1.1.1", {"forwarded": "for=8.8.8.8", "x-forwarded-for": "1.2.4.8"}, "8.8.8.8"),  # Forwarded wins
    ("::ffff:10.1.1.1", {"x-forwarded-for": "1.2.4.8"}, "1.2.4.8"),  # IPv4-mapped peer
    ("192.0.2.7", {"x-forwarded-for": "2001:db8::5, 2400:3200::1"}, "2400:3200::1"),
]


@pytest.mark.parametrize(("peer", "headers", "want"), CASES)
def test_client_ip(peer: str, headers: dict[str, str], want: str) -> None:
    assert client_ip(peer, headers, TRUSTED) == want


@given(st.ip_addresses(v=4).filter(lambda a: not a.is_private), st.text(max_size=80))
def test_an_untrusted_peer_cannot_forge_its_address(peer: object, forged: str) -> None:
    headers = {"x-forwarded-for": forged, "forwarded": f"for={forged}", "x-real-ip": forged}
    assert client_ip(str(peer), headers, TRUSTED) == str(peer)


def test_bad_trusted_proxy_setting() -> None:
    with pytest.raises(ConfigError, match="'nonsense' is not an address"):
        TrustedProxies.parse("10.0.0.0/8, nonsense")
