from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geowarden.errors import AddressError
from geowarden.intel import addr

BAD = [
    "",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3.4/24",
    "fe80::1%eth0",
    "::g",
    "example.com",
    " 1.2.3.4x",
    "1.2.3.-1",
    "x" * 500,
    "1.2.\x003.4",  # a NUL: inet_pton raises ValueError, not OSError
    "8.8.8.8\x00",
    "::\x00",
    "1.2.3.\udc80",  # a lone surrogate (undecodable bytes kept by surrogateescape)
]


@given(st.ip_addresses(v=4))
def test_ipv4_round_trip(a: ipaddress.IPv4Address) -> None:
    p = addr.parse(str(a))
    assert (p.version, p.v4) == (4, int(a))
    assert addr.v4_text(p.v4) == str(a)


@given(st.ip_addresses(v=6))
def test_ipv6_round_trip(a: ipaddress.IPv6Address) -> None:
    p = addr.parse(str(a))
    if a.ipv4_mapped is not None:
        assert (p.version, p.v4) == (4, int(a.ipv4_mapped))
    else:
        assert (p.version, int.from_bytes(p.v6, "big")) == (6, int(a))


@pytest.mark.parametrize("text", BAD)
def test_malformed_addresses_are_refused_with_a_bounded_message(text: str) -> None:
    with pytest.raises(AddressError) as exc:
        addr.parse(text)
    assert len(exc.value.message) < 120


def test_surrounding_whitespace_is_tolerated() -> None:
    assert addr.parse(" 8.8.8.8\n").v4 == 0x08080808


@given(st.lists(st.one_of(st.ip_addresses().map(str), st.sampled_from(BAD)), max_size=40))
def test_parse_many_keeps_positions(texts: list[str]) -> None:
    batch = addr.parse_many(texts)
    seen = sorted([*batch.v4_pos.tolist(), *batch.v6_pos.tolist(), *(i for i, _ in batch.errors)])
    assert seen == list(range(len(texts)))
    for pos, value in zip(batch.v4_pos.tolist(), batch.v4.tolist(), strict=True):
        assert addr.parse(texts[pos]).v4 == value
    for pos, _ in batch.errors:
        assert texts[pos] in BAD


def test_packed_integers_must_fit_32_bits() -> None:
    assert addr.parse_v4_ints(np.array([1, 2], dtype=np.int64)).dtype == np.uint32
    with pytest.raises(AddressError):
        addr.parse_v4_ints(np.array([-1]))
    with pytest.raises(AddressError):
        addr.parse_v4_ints(np.array([1 << 32]))
    with pytest.raises(AddressError):
        addr.parse_v4_ints(np.array([1.5]))
