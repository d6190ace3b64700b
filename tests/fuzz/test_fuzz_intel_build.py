"""``geowarden intel build --from DIR``: small files in each source format (written here, in the
layout of ``shared/data``), damaged, in a temporary directory. The rule: a snapshot, or one line
naming the source (exit 4), never an internal error."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.fuzzkit import LONG_LINE, costly, junk_bytes, run_cli

AWS = {
    "syncToken": "1753388594",
    "createDate": "2025-07-24-20-23-14",
    "prefixes": [{"ip_prefix": "3.5.140.0/22", "region": "ap-northeast-2", "service": "AMAZON"}],
    "ipv6_prefixes": [{"ipv6_prefix": "2600:1f14::/35", "region": "us-west-2", "service": "EC2"}],
}
SUBNET = {"ip_prefix": "8.3.29.0/24", "alpha2code": "US", "region": "US-CA", "city": "Los Angeles", "postal_code": ""}
VULTR = {"description": "Vultr GeoFeed", "asn": 20473, "subnets": [SUBNET]}
IPVERSE = {"countryCode": "DE", "prefixes": {"ipv4": ["2.56.11.0/24", "2.56.20.0/22"], "ipv6": ["2a00:1028::/32"]}}

FILES: dict[str, bytes] = {
    "ip/ipverse-country/country/de/aggregated.json": json.dumps(IPVERSE, indent=2).encode(),
    "ip/rir/delegated-afrinic-extended-latest": (
        b"2|afrinic|20230323|4|00000000|20230323|00000\nafrinic|*|ipv4|*|2|summary\n"
        b"afrinic|ZA|ipv4|41.0.0.0|2097152|20071126|allocated|F36B9F4B\n"
        b"afrinic|EG|ipv6|2c0f:fc00::|32|20050512|allocated|F3640A48\n"
    ),
    "anonymizers/x4bnet/output_vpn_ipv4.txt": b"2.26.157.0/24\n2.26.164.0/24\n",
    "anonymizers/x4bnet/output_datacenter_ipv6.txt": b"2a01:4f8::/32\n",
    "anonymizers/vpn-exits/exits.txt": b"# 2025-08-31\n2.58.241.66 # protonvpn.net\n1.2.3.4 # placeholder\n",
    "anonymizers/tor/exit-nodes-2026-02-22.txt": b"102.130.113.9\n102.130.117.167\n",
    "cloud/aws-ip-ranges.json": json.dumps(AWS, indent=2).encode(),
    "cloud/vultr-geofeed.json": json.dumps(VULTR).encode(),
    "cloud/digitalocean.csv": b"5.101.96.0/21,NL,NL-NH,Amsterdam,1098 XH\n24.144.64.0/22,US,US-NJ,North Bergen,07047\n",
    "cloud/linode.txt": b"# ip_prefix, alpha2code, region, city, postal_code\n2600:3c00::/32,US,US-TX,Richardson,\n",
    "cloud/cloudflare-v4-ip-ranges.txt": b"173.245.48.0/20\n103.21.244.0/22\n",
    "cloud/more/hetzner.csv": b"Type,Address\nIPv4,5.9.0.0/16\nIPv6,2a01:4f8::/32\n",
    "cloud/by-provider/apple-proxy/ipv4.txt": b"172.224.224.0/27\n",
}


@st.composite
def damaged(draw: st.DrawFn, original: bytes) -> bytes:
    lines = original.split(b"\n")
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        lines[i] = draw(
            st.one_of(
                junk_bytes,
                st.sampled_from([
                    b"", b"\x00", b"\xef\xbb\xbf" + lines[i], lines[i] + b"\r", lines[i][: len(lines[i]) // 2],
                    b"999.1.1.1/24", b"1.2.3.4/33", b"::/0", b"0.0.0.0/0", b'"ip_prefix": 5,', b'"prefixes": null,',
                    b"[" * 3000, LONG_LINE.encode(), b"afrinic|ZA|ipv4|41.0.0.0|-5|20071126|allocated",
                    b"afrinic|ZA|ipv4|41.0.0.0|1e309|99999999|allocated", b"IPv4,not-a-prefix",
                ]),
            )
        )  # fmt: skip
    return b"\n".join(lines)


@pytest.mark.parametrize("name", sorted(FILES))
@costly()
@given(data=st.data())
def test_each_source_format_damaged(fuzz_env: dict[str, str], scratch: Path, data: st.DataObject, name: str) -> None:
    root = scratch / "sources"
    shutil.rmtree(root, ignore_errors=True)
    path = root / name
    path.parent.mkdir(parents=True)
    path.write_bytes(data.draw(damaged(FILES[name])))
    r = run_cli(
        ["intel", "build", "--from", str(root), "--no-activate", "--json", "-q"],
        {**fuzz_env, "GEOWARDEN_HOME": str(scratch / "build-home")},
        reader="intel build --from " + name,
    )
    assert r.code in (0, 4), r
    if r.code:
        assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stderr
    else:
        assert json.loads(r.stdout)["active"] is False


def test_every_format_here_is_recognised(fuzz_env: dict[str, str], scratch: Path) -> None:
    """The undamaged files build, and every one of them is read (else the fuzzing above is idle)."""
    root = scratch / "whole"
    shutil.rmtree(root, ignore_errors=True)
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(text)
    r = run_cli(["intel", "build", "--from", str(root), "--no-activate", "--json", "-q"],
                {**fuzz_env, "GEOWARDEN_HOME": str(scratch / "build-home")})  # fmt: skip
    assert r.code == 0, r
    assert len(json.loads(r.stdout)["sources"]) >= len(FILES) - 1  # the two x4bnet files make one source each


@functools.cache
def _mmdb(path: Path) -> bytes:
    return path.read_bytes()


@pytest.fixture(scope="module")
def mmdb_path() -> Path:
    from helpers import require_shared

    return require_shared() / "ip" / "iptoasn-country.mmdb"


@costly()
@given(
    how=st.sampled_from(["truncate", "overwrite-tail", "overwrite-anywhere", "empty"]),
    cut=st.floats(0.0, 1.0, exclude_max=True),
    patches=st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.binary(min_size=1, max_size=16)),
                     min_size=1, max_size=8),
)  # fmt: skip
def test_a_damaged_mmdb_source(
    fuzz_env: dict[str, str],
    scratch: Path,
    mmdb_path: Path,
    how: str,
    cut: float,
    patches: list[tuple[float, bytes]],
) -> None:
    """An MMDB file truncated, or with bytes overwritten (its metadata sits at the end): a snapshot,
    or one line naming the file, never an internal error."""
    mmdb_bytes = _mmdb(mmdb_path)
    raw = bytearray(mmdb_bytes)
    if how == "truncate":
        raw = raw[: int(cut * len(raw))]
    elif how == "empty":
        raw = bytearray()
    else:
        lo = len(raw) - 20_000 if how == "overwrite-tail" else 0
        for where, chunk in patches:
            at = lo + int(where * (len(mmdb_bytes) - lo - len(chunk)))
            raw[at : at + len(chunk)] = chunk
    root = scratch / "mmdb-sources"
    shutil.rmtree(root, ignore_errors=True)
    (root / "ip").mkdir(parents=True)
    (root / "ip" / "iptoasn-country.mmdb").write_bytes(bytes(raw))
    r = run_cli(
        ["intel", "build", "--from", str(root), "--no-activate", "--json", "-q"],
        {**fuzz_env, "GEOWARDEN_HOME": str(scratch / "build-home")},
        reader="intel build --from ip/iptoasn-country.mmdb (damaged MMDB)",
    )
    assert r.code in (0, 4), r
    if r.code:
        assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "iptoasn-country" in r.stderr, r.stderr
