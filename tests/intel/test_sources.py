"""Source parsers against the real public files in ../shared/data (and small broken copies)."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geowarden.errors import SourceError
from geowarden.intel.sources import KNOWN_SOURCES, discover, known_source, loaders
from geowarden.intel.sources.base import (
    LABELS,
    MAX_KEY,
    V4_BASE,
    SourceData,
    SourceKind,
    key_of,
    network_bounds,
)
from geowarden.intel.sources.lists import bounds
from geowarden.intel.sources.mmdb import read_mmdb
from geowarden.intel.sources.ranges import consumer_isp_reference
from geowarden.intel.sources.registry import parse_delegated
from helpers import SHARED, require_shared

DATA = SHARED

#: Every source discover() must find in ../shared/data.
EXPECTED = {
    "dbip-country", "dbip-asn", "iptoasn-country", "iptoasn-asn",
    "ipverse-rir", "rir-delegated",
    "x4bnet-vpn", "x4bnet-datacenter", "x4bnet-vpn-apple", "x4bnet-vpn-mullvadvpn",
    "x4bnet-vpn-pia", "x4bnet-vpn-protonvpn", "x4bnet-datacenter-protonvpn",
    "x4bnet-hosting-asn", "x4bnet-vpn-asn", "vpn-exits", "tor-exits",
    "aws", "gcp", "azure", "oracle", "github", "fastly", "zscaler", "akamai", "cloudflare",
    "digitalocean", "linode", "vultr", "geofeed", "provider-region",
    *(f"ipranges-{p}" for p in (
        "amazon", "apple-proxy", "bing", "cloudflare", "digitalocean", "facebook", "github",
        "google", "googlebot", "linode", "microsoft", "openai", "oracle", "perplexity",
        "protonvpn", "telegram", "twitter", "vultr",
    )),
    *(f"cloud-more-{p}" for p in (
        "a2hosting", "ahrefs", "akamai", "alibaba", "aws", "bing-bot", "choopa", "cloudflare",
        "digitalocean", "dreamhost", "fastly", "github", "godaddy", "google-bot", "google-cloud",
        "heroku-aws", "hetzner", "huawei-cloud", "linode", "meta-crawler", "microsoft-azure",
        "nforce", "onlinesas", "openai", "oracle-cloud", "ovh", "perplexity", "rackspace",
        "softlayer-ibm", "telegram", "tencent", "ucloud", "vercel-aws", "vultr", "whatsapp",
        "zscaler",
    )),
}  # fmt: skip


def shared() -> Path:
    return require_shared()


@pytest.fixture(scope="module")
def data_dir() -> Path:
    return shared()


@pytest.fixture(scope="module")
def found(data_dir: Path) -> dict[str, SourceData]:
    """Everything under ../shared/data, parsed once (the MMDB files take a few seconds)."""
    return {s.meta.name: s for s in discover(data_dir)}


def values_at(src: SourceData, ip: str) -> list[Any]:
    key = key_of(ipaddress.ip_address(ip))
    return [v for f, la, v in zip(src.first, src.last, src.values, strict=True) if f <= key <= la]


def copy_into(tmp: Path, rel: str, data_dir: Path) -> Path:
    """Copy one file of ../shared/data into the same place under ``tmp``; return the copy."""
    dest = tmp / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data_dir / rel, dest)
    dest.chmod(0o644)
    return dest


def only(directory: Path, name: str | None = None) -> SourceData:
    """The one source under ``directory`` (or the one called ``name``)."""
    srcs = discover(directory)
    if name is None:
        (src,) = srcs
        return src
    (src,) = [s for s in srcs if s.meta.name == name]
    return src


# -- what discover() finds -----------------------------------------------------------------------


def test_discover_finds_every_expected_source(found: dict[str, SourceData]) -> None:
    assert set(found) == EXPECTED
    assert all(len(s) > 0 for s in found.values())


def test_discover_order_is_stable_and_names_unique(data_dir: Path) -> None:
    names = [name for name, _ in loaders(data_dir)]
    assert len(names) == len(set(names))
    assert names == [name for name, _ in loaders(data_dir)]


def test_starlink_is_never_a_source(found: dict[str, SourceData], data_dir: Path) -> None:
    assert not any("starlink" in name for name in found)
    assert not any("starlink" in name for name, _ in loaders(data_dir))
    ref = consumer_isp_reference(data_dir)
    assert ref.meta.name == "starlink"
    assert set(ref.values) == {("consumer", "Starlink")}
    assert ("consumer", "Starlink") in values_at(ref, "102.215.56.1")
    assert "consumer" not in LABELS


@pytest.mark.parametrize(
    ("exclude", "gone"),
    [
        (["aws"], {"aws"}),
        (["dbip-*", "iptoasn-*"], {"dbip-country", "dbip-asn", "iptoasn-country", "iptoasn-asn"}),
        (["cloud-more-*", "ipranges-*"], {n for n in EXPECTED if n.startswith(("cloud-more-", "ipranges-"))}),
        (["geofeed", "tor-exits", "x4bnet-vpn-apple"], {"geofeed", "tor-exits", "x4bnet-vpn-apple"}),
    ],
)  # fmt: skip
def test_discover_exclude_leaves_sources_out(data_dir: Path, exclude: list[str], gone: set[str]) -> None:
    heavy = {"dbip-country", "dbip-asn", "iptoasn-country", "iptoasn-asn", "ipverse-rir", "azure"}
    heavy |= {"cloud-more-microsoft-azure", "x4bnet-datacenter"}  # this test is about names
    names = {s.meta.name for s in discover(data_dir, exclude=[*exclude, *heavy])}
    assert not names & gone
    assert names == EXPECTED - gone - heavy


def test_discover_on_a_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a directory"):
        discover(tmp_path / "nope")
    assert discover(tmp_path) == []  # an empty directory simply holds no source


# -- facts from the real files -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ip", "value"),
    [
        ("dbip-country", "1.2.4.8", "CN"),
        ("dbip-country", "8.8.8.8", "US"),
        ("dbip-country", "175.45.176.1", "KP"),
        ("iptoasn-country", "8.8.8.8", "US"),
        ("iptoasn-country", "2001:4860:4860::8888", "US"),
        # registration and routing disagree, and both answers are kept
        ("ipverse-rir", "114.114.114.114", "CN"),
        ("iptoasn-country", "114.114.114.114", "US"),
        ("ipverse-rir", "1.2.4.8", "CN"),
        ("ipverse-rir", "175.45.176.1", "KP"),
        ("ipverse-rir", "2400:3200::1", "CN"),
        ("rir-delegated", "200.160.0.1", "BR"),
        ("rir-delegated", "164.151.255.255", "ZA"),  # 164.146.0.0 + 393216 addresses
        ("geofeed", "5.101.96.1", "NL"),  # DigitalOcean Amsterdam
        ("geofeed", "2600:3c00::1", "US"),  # Linode Richardson
        ("geofeed", "8.3.29.1", "US"),  # Vultr Los Angeles
        ("dbip-asn", "8.8.8.8", (15169, "Google LLC")),
        ("dbip-asn", "1.1.1.1", (13335, "Cloudflare, Inc.")),
        ("iptoasn-asn", "8.8.8.8", (15169, "GOOGLE")),
        ("dbip-asn", "2001:4860:4860::8888", (15169, "Google LLC")),
        ("aws", "3.4.12.4", ("hosting", "Amazon AWS")),
        ("gcp", "34.1.208.1", ("hosting", "Google Cloud")),
        ("azure", "4.145.74.53", ("hosting", "Microsoft Azure")),
        ("oracle", "129.80.0.1", ("hosting", "Oracle Cloud")),
        ("github", "192.30.252.1", ("hosting", "GitHub")),
        ("fastly", "151.101.1.1", ("hosting", "Fastly")),
        ("akamai", "23.32.0.1", ("hosting", "Akamai")),
        ("cloudflare", "2606:4700::1", ("hosting", "Cloudflare")),
        ("zscaler", "165.225.0.1", ("proxy", "Zscaler")),
        ("cloud-more-zscaler", "165.225.0.1", ("proxy", "Zscaler")),
        ("linode", "2600:3c00::1", ("hosting", "Linode")),
        ("vultr", "8.3.29.1", ("hosting", "Vultr")),
        ("x4bnet-vpn-apple", "104.28.28.1", ("relay", "Apple iCloud Private Relay")),
        ("ipranges-apple-proxy", "104.28.28.1", ("relay", "Apple iCloud Private Relay")),
        ("ipranges-protonvpn", "2.58.241.66", ("vpn", "Proton VPN")),
        ("ipranges-openai", "4.151.71.177", ("hosting", "OpenAI")),
        ("vpn-exits", "2.58.241.66", ("vpn", "protonvpn.net")),
        ("x4bnet-vpn", "2.26.157.1", ("vpn", "X4BNet VPN list")),
        ("x4bnet-datacenter", "1.12.0.1", ("hosting", "X4BNet datacenter list")),
        ("cloud-more-tencent", "1.12.0.1", ("hosting", "Tencent Cloud")),
    ],
)
def test_real_fact(found: dict[str, SourceData], name: str, ip: str, value: Any) -> None:
    assert value in values_at(found[name], ip)


def test_asn_labels_from_x4bnet(found: dict[str, SourceData]) -> None:
    hosting = found["x4bnet-hosting-asn"].asn_labels
    assert hosting[45090] == ("hosting", "Tencent cloud computing, they dont really monitor their network")
    assert hosting[133752][0] == "hosting"
    assert found["x4bnet-vpn-asn"].asn_labels[209854] == ("vpn", "Surfshark")
    assert found["x4bnet-vpn-asn"].asn_labels[9009] == ("vpn", "M247, GB (NordVPN)")


def test_current_tor_exit_is_labelled(found: dict[str, SourceData], data_dir: Path) -> None:
    newest = max((data_dir / "anonymizers/tor").glob("exit-nodes-*.txt"))
    addrs = newest.read_text().split()
    tor = found["tor-exits"]
    assert len(tor) == len(addrs)
    for ip in (addrs[0], addrs[len(addrs) // 2], addrs[-1]):
        assert ("tor", "Tor") in values_at(tor, ip)
    assert tor.meta.date == newest.stem.removeprefix("exit-nodes-")


def test_aws_prefixes_are_in_the_aws_source(found: dict[str, SourceData], data_dir: Path) -> None:
    doc = json.loads((data_dir / "cloud/aws-ip-ranges.json").read_text())
    ranges = set(zip(found["aws"].first, found["aws"].last, strict=True))
    for row in (doc["prefixes"][0], doc["prefixes"][-1], doc["ipv6_prefixes"][0]):
        net = row.get("ip_prefix") or row["ipv6_prefix"]
        assert network_bounds(net) in ranges
    assert found["aws"].meta.date == doc["createDate"][:10]


def test_vpn_exits_ignore_the_placeholder(found: dict[str, SourceData], tmp_path: Path, data_dir: Path) -> None:
    assert values_at(found["vpn-exits"], "1.2.3.4") == []
    copy = copy_into(tmp_path, "anonymizers/vpn-exits/exits.txt", data_dir)
    with copy.open("a") as f:
        f.write("1.2.3.4 # placeholder.example\n# a comment\n")
    src = only(tmp_path)
    assert values_at(src, "1.2.3.4") == []
    assert src.skipped == 0
    assert len(src) == len(found["vpn-exits"])
    assert src.meta.date == "2025-08-31"


def test_dbip_metadata_carries_the_required_attribution(found: dict[str, SourceData]) -> None:
    for name, file in (("dbip-country", "dbip-country-lite"), ("dbip-asn", "dbip-asn-lite")):
        meta = found[name].meta
        assert meta.attribution == "IP Geolocation by DB-IP (https://db-ip.com)"
        assert meta.licence == "CC-BY-4.0"
        assert meta.date is not None
        assert meta.date.startswith("2026-09")
        assert meta.files == (f"ip/{file}.mmdb",)


def test_dbip_pseudo_countries_are_skipped(found: dict[str, SourceData]) -> None:
    src = found["dbip-country"]
    assert src.skipped > 0  # 192.0.0.8/29 and friends answer "ZZ"
    assert values_at(src, "192.0.0.9") == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_source_is_well_formed(found: dict[str, SourceData], name: str) -> None:
    src = found[name]
    meta = src.meta
    assert meta.name == name
    assert known_source(name) is not None
    assert meta.kind == known_source(name).kind  # type: ignore[union-attr]
    assert meta.title
    assert meta.licence
    assert meta.files
    assert all(not Path(f).is_absolute() and (DATA / f).is_file() for f in meta.files)
    assert len(src.first) == len(src.last) == len(src.values)
    for first, last in zip(src.first, src.last, strict=True):
        assert 0 <= first <= last <= MAX_KEY
    if meta.kind == SourceKind.COUNTRY:
        assert all(len(v) == 2 and v.isupper() and v.isalpha() and v != "ZZ" for v in set(src.values))
    elif meta.kind == SourceKind.ASN:
        assert all(isinstance(a, int) and a > 0 and isinstance(o, str) for a, o in set(src.values))
    elif meta.kind == SourceKind.LABEL:
        assert {lab for lab, _ in set(src.values)} <= set(LABELS)
        assert all(isinstance(p, str) and p for _, p in set(src.values))
    else:
        assert not src.first
        assert all(lab in LABELS and p for lab, p in src.asn_labels.values())


def test_known_sources_table() -> None:
    for name, meta in KNOWN_SOURCES.items():
        assert meta.name == name == name.lower()
        assert meta.title
        assert meta.licence
        assert meta.url
        assert not meta.files
    assert "starlink" not in KNOWN_SOURCES
    assert KNOWN_SOURCES["iptocc"].kind == SourceKind.COUNTRY
    assert KNOWN_SOURCES["iporigin"].kind == SourceKind.LABEL
    assert KNOWN_SOURCES["vpn-exits"].licence == "GPL-3.0"
    assert known_source("ipranges-newcloud") is not None
    assert known_source("no-such-source") is None


# -- the MMDB tree walk ---------------------------------------------------------------------------


def test_mmdb_tree_walk_equals_the_reader_iterator(found: dict[str, SourceData], data_dir: Path) -> None:
    walked = found["iptoasn-country"]
    iterated = read_mmdb("iptoasn-country", data_dir / "ip/iptoasn-country.mmdb", data_dir, iterate=True)
    assert walked.first == sorted(walked.first)
    assert sorted(zip(walked.first, walked.last, walked.values, strict=True)) == sorted(
        zip(iterated.first, iterated.last, iterated.values, strict=True)
    )
    assert walked.skipped == iterated.skipped
    assert walked.meta == iterated.meta


# -- malformed input ------------------------------------------------------------------------------

BAD_LINE = "this is not an address\n"


@pytest.mark.parametrize(
    ("rel", "name", "bad"),
    [
        ("anonymizers/x4bnet/output_vpn_ipv4.txt", "x4bnet-vpn", BAD_LINE),
        ("anonymizers/x4bnet/input_vpn_ips_pia.txt", "x4bnet-vpn-pia", "300.1.2.0/24\n"),
        ("anonymizers/x4bnet/input_datacenter_ASN.txt", "x4bnet-hosting-asn", "ASX # nobody\n"),
        ("anonymizers/vpn-exits/exits.txt", "vpn-exits", "1.2.3 # broken.example\n"),
        ("anonymizers/tor/exit-nodes-2026-02-22.txt", "tor-exits", "10.0.0.0/33\n"),
        ("cloud/more/aws.csv", "cloud-more-aws", "IPv4\r\n"),
        ("cloud/by-provider/openai_ipv4_merged.txt", "ipranges-openai", "1.2.3.4/24/8\n"),
        ("cloud/akamai-v4-ip-ranges.txt", "akamai", BAD_LINE),
        ("cloud/linode.txt", "linode", "not-a-prefix,US,,,\n"),
        ("ip/rir/delegated-afrinic-extended-latest", "rir-delegated", "afrinic|ZA|ipv4|1.2.3.x|256|1|allocated\n"),
        ("ip/rir/delegated-lacnic-extended-latest", "rir-delegated", "lacnic|BR|ipv6|2801::|200|1|assigned\n"),
    ],
)  # fmt: skip
def test_a_malformed_line_is_counted_not_raised(tmp_path: Path, data_dir: Path, rel: str, name: str, bad: str) -> None:
    copy_into(tmp_path / "clean", rel, data_dir)
    clean = only(tmp_path / "clean", name)
    copy = copy_into(tmp_path / "bad", rel, data_dir)
    ends_cleanly = copy.read_bytes().endswith(b"\n")
    with copy.open("a", newline="") as f:
        f.write(bad if ends_cleanly else "\n" + bad)
    src = only(tmp_path / "bad", name)
    assert src.skipped == clean.skipped + 1
    assert len(src) == len(clean)


def test_geofeed_bad_row_is_counted_in_both_sources(tmp_path: Path, data_dir: Path) -> None:
    copy = copy_into(tmp_path, "cloud/digitalocean.csv", data_dir)
    with copy.open("a") as f:
        f.write("203.0.113.0/24,not-a-country,,,\nbroken-row\n")
    srcs = {s.meta.name: s for s in discover(tmp_path)}
    assert set(srcs) == {"digitalocean", "geofeed"}
    assert srcs["digitalocean"].skipped == 1  # broken-row; the prefix itself is fine as hosting
    assert srcs["geofeed"].skipped == 2  # broken-row, and a row with no valid country


@pytest.mark.parametrize(
    "rel",
    [
        "cloud/aws-ip-ranges.json",
        "cloud/google-cloud-ip-ranges.json",
        "cloud/microsoft-azure-ip-ranges.json",
        "cloud/oracle-cloud-ip-ranges.json",
        "cloud/github-ip-ranges.json",
        "cloud/fastly-ip-ranges.json",
        "cloud/zscaler-cloud-ip-ranges.json",
        "cloud/vultr-geofeed.json",
        "ip/ipverse-country/country/kp/aggregated.json",
    ],
)
def test_truncated_json_raises_source_error(tmp_path: Path, data_dir: Path, rel: str) -> None:
    copy = copy_into(tmp_path, rel, data_dir)
    text = copy.read_bytes()
    copy.write_bytes(text[: len(text) // 2])
    with pytest.raises(SourceError) as info:
        discover(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{rel}: ")
    assert "JSON" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("rel", "content"),
    [
        ("cloud/aws-ip-ranges.json", b'{"syncToken": "1", "createDate": "2025-07-24-20-23-14"}'),
        ("cloud/github-ip-ranges.json", b'{"verifiable_password_authentication": false}'),
        ("cloud/vultr-geofeed.json", b"[1, 2, 3]"),
        ("ip/ipverse-country/country/kp/aggregated.json", b'{"countryCode": "KP"}'),
        ("ip/dbip-country-lite.mmdb", b"\x00" * 4096),
        ("anonymizers/x4bnet/output_vpn_ipv4.txt", b"\xff\xfe\x00garbage\x00\n"),
        ("anonymizers/x4bnet/output_vpn_ipv4.txt", b"hello\nworld\n"),
        ("cloud/more/hetzner.csv", b"Type,Address\r\nIPv4,nothing\r\n"),
        ("anonymizers/x4bnet/input_vpn_ASN.txt", b"not an asn\n"),
    ],
)
def test_unusable_file_raises_one_line_source_error(tmp_path: Path, rel: str, content: bytes) -> None:
    path = tmp_path / rel
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(SourceError) as info:
        discover(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{rel}: ")
    assert "\n" not in message


def test_truncated_mmdb_raises_source_error(tmp_path: Path, data_dir: Path) -> None:
    copy = copy_into(tmp_path, "ip/iptoasn-country.mmdb", data_dir)
    blob = copy.read_bytes()
    copy.write_bytes(blob[: len(blob) // 3])
    with pytest.raises(SourceError, match=r"^ip/iptoasn-country\.mmdb: "):
        discover(tmp_path)


def test_unreadable_file_raises_source_error(tmp_path: Path, data_dir: Path) -> None:
    copy = copy_into(tmp_path, "anonymizers/vpn-exits/exits.txt", data_dir)
    copy.chmod(0)
    try:
        if os.access(copy, os.R_OK):
            pytest.skip("running as a user who can read anything")
        with pytest.raises(SourceError, match=r"^anonymizers/vpn-exits/exits\.txt: cannot read"):
            discover(tmp_path)
    finally:
        copy.chmod(0o644)


# -- layouts --------------------------------------------------------------------------------------


def test_newest_tor_list_wins(tmp_path: Path) -> None:
    tor = tmp_path / "anonymizers/tor"
    tor.mkdir(parents=True)
    (tor / "exit-nodes-2025-12-31.txt").write_text("192.0.2.1\n")
    (tor / "exit-nodes-2026-01-05.txt").write_text("198.51.100.7\n")
    src = only(tmp_path)
    assert src.meta.date == "2026-01-05"
    assert src.meta.files == ("anonymizers/tor/exit-nodes-2026-01-05.txt",)
    assert values_at(src, "198.51.100.7") == [("tor", "Tor")]
    assert values_at(src, "192.0.2.1") == []


def test_ipranges_layouts_prefer_merged_files_and_ignore_all(tmp_path: Path) -> None:
    base = tmp_path / "cloud/by-provider"
    (base / "newcloud").mkdir(parents=True)  # upstream layout: <provider>/ipv4.txt
    (base / "newcloud/ipv4.txt").write_text("192.0.2.1/32\n192.0.2.2/32\n")
    (base / "newcloud/ipv4_merged.txt").write_text("192.0.2.0/30\n")
    (base / "protonvpn_ipv4.txt").write_text("198.51.100.1\n")  # flat layout, no merged file
    (base / "all_ipv4_merged.txt").write_text("0.0.0.0/0\n")
    srcs = {s.meta.name: s for s in discover(tmp_path)}
    assert set(srcs) == {"ipranges-newcloud", "ipranges-protonvpn"}
    assert srcs["ipranges-newcloud"].meta.files == ("cloud/by-provider/newcloud/ipv4_merged.txt",)
    assert len(srcs["ipranges-newcloud"]) == 1
    assert values_at(srcs["ipranges-protonvpn"], "198.51.100.1") == [("vpn", "Proton VPN")]


def test_delegated_format() -> None:
    text = "\n".join(
        [
            "# a comment",
            "2.3|lacnic|20230323|86237|19870101|20230322|-0300",
            "lacnic|*|ipv4|*|19618|summary",
            "lacnic|BR|asn|1916|1|19950101|allocated|1",
            "lacnic|BR|ipv4|1.0.0.0|768|20200310|allocated|310248",  # three /24s: not a power of 2
            "lacnic|AR|ipv6|2001:1200::|23|20030110|assigned|1",
            "lacnic||ipv4|2.0.0.0|256||available|",
            "lacnic|ZZ|ipv4|3.0.0.0|256|20200101|reserved|",
            "lacnic|BR|ipv4|4.0.0.0|0|20200101|allocated|1",  # malformed: an empty block
            "lacnic|BR|ipv4|255.255.255.0|512|20200101|allocated|1",  # malformed: past the end
            "garbage",  # malformed
            "",
        ]
    )
    src = SourceData(meta=KNOWN_SOURCES["rir-delegated"])
    assert parse_delegated(src, text) == "2023-03-23"
    assert list(zip(src.first, src.last, src.values, strict=True)) == [
        (V4_BASE + 0x0100_0000, V4_BASE + 0x0100_02FF, "BR"),
        (*network_bounds("2001:1200::/23"), "AR"),
    ]
    assert src.skipped == 3


# -- the fast address parser ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "1.2.3.4", "1.2.3.4/32", "1.2.3.0/24", "10.0.0.1/8", "0.0.0.0/0", "255.255.255.255",
        "1.2.3.4/08", "2001:db8::/32", "::ffff:1.2.3.4", "1.2.3.0/255.255.255.0",
    ],
)  # fmt: skip
def test_bounds_matches_network_bounds(text: str) -> None:
    assert bounds(text) == network_bounds(text)


@pytest.mark.parametrize(
    "text",
    ["", "1.2.3", "1.2.3.4/33", "256.1.1.1", "01.2.3.4", "1.2.3.4/", "1.2.3.4/-1", "1.2.3.٤", "a.b.c.d", "1.2.3.4 5"],
)
def test_bounds_rejects_what_ipaddress_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        network_bounds(text)
    with pytest.raises(ValueError, match=r"."):
        bounds(text)


@given(st.integers(0, 0xFFFF_FFFF), st.integers(0, 32))
def test_bounds_property(addr: int, length: int) -> None:
    text = f"{ipaddress.IPv4Address(addr)}/{length}"
    assert bounds(text) == network_bounds(text)


# -- the default sources (installed with the package) ---------------------------------------------


@pytest.fixture(scope="module")
def iptocc_timed() -> tuple[SourceData, float]:
    from geowarden.intel.sources.pypi import iptocc_source

    t0 = time.perf_counter()
    src = iptocc_source()
    return src, time.perf_counter() - t0


@pytest.mark.parametrize(
    ("ip", "cc"),
    [
        ("1.2.4.8", "CN"),
        ("8.8.8.8", "US"),
        ("175.45.176.1", "KP"),
        ("2400:3200::1", "CN"),
        ("2001:67c:2e8::1", "NL"),  # a RIPE NCC /48 inside a micro-assignment /32
        ("2a00:1450:4001::1", "IE"),
    ],
)
def test_iptocc_extraction_answers(iptocc_timed: tuple[SourceData, float], ip: str, cc: str) -> None:
    import iptocc

    src, _ = iptocc_timed
    assert values_at(src, ip) == [iptocc.country_code(ip)] == [cc]


def test_iptocc_extraction_shape(iptocc_timed: tuple[SourceData, float]) -> None:
    src, seconds = iptocc_timed
    assert src.meta.name == "iptocc"
    assert src.meta.kind == SourceKind.COUNTRY
    assert "iptocc 3." in src.meta.title
    assert seconds < 60, f"iptocc extraction took {seconds:.1f} s"
    assert len(src) > 150_000
    assert all(a <= b for a, b in zip(src.first, src.first[1:], strict=False))  # sorted
    assert all(b > a for a, b in zip(src.last, src.first[1:], strict=False))  # no overlaps
    assert set(src.values) >= {"CN", "US", "KP", "IR", "RU", "DE"}


def key_address(key: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if V4_BASE <= key <= V4_BASE + 0xFFFF_FFFF:
        return ipaddress.IPv4Address(key - V4_BASE)
    return ipaddress.IPv6Address(key)


def test_iporigin_source() -> None:
    import iporigin

    from geowarden.intel.sources.pypi import iporigin_source

    src = iporigin_source()
    assert src.meta.name == "iporigin"
    assert src.meta.date is not None
    assert {lab for lab, _ in set(src.values)} == {"hosting", "vpn", "tor", "relay"}
    assert values_at(src, "104.16.0.1") == [("hosting", "Cloudflare")]  # iporigin kind "cdn"
    assert values_at(src, "52.95.110.1") == [("hosting", "Amazon AWS")]
    # every 500th range answers as iporigin itself does
    for first, (label, provider) in list(zip(src.first, src.values, strict=True))[::500]:
        origin = iporigin.classify(str(key_address(first)))
        assert origin.provider == provider
        assert label == {"cdn": "hosting", "bot": "hosting"}.get(origin.kind, origin.kind) or (
            label == "relay" and origin.kind == "vpn"
        )
    relay = [v for v in set(src.values) if v[0] == "relay"]
    assert relay
    assert all("Private Relay" in p for _, p in relay)
    assert len(src) > 30_000


# -- provider regions ----------------------------------------------------------------------------


def test_provider_regions_place_each_prefix_in_its_region_country(found: dict[str, SourceData]) -> None:
    src = found["provider-region"]
    assert src.meta.kind == SourceKind.COUNTRY and src.meta.date
    assert values_at(src, "18.162.0.1") == ["HK"]  # AWS ap-east-1
    assert values_at(src, "34.96.128.1") == ["HK"]  # Google Cloud asia-east2
    assert "CN" in set(src.values)  # AWS cn-north-1 / cn-northwest-1


def test_every_region_in_the_providers_feeds_is_in_the_table(found: dict[str, SourceData]) -> None:
    # A region the table does not know is left out and named; a new region in the data fails here.
    assert found["provider-region"].meta.notes is None, found["provider-region"].meta.notes


def test_an_unknown_or_global_region_gives_no_country_and_is_named(tmp_path: Path) -> None:
    doc = {
        "createDate": "2025-07-24-20-23-14",
        "prefixes": [
            {"ip_prefix": "3.0.0.0/24", "region": "ap-east-1"},
            {"ip_prefix": "3.0.1.0/24", "region": "xx-nowhere-9"},
            {"ip_prefix": "3.0.2.0/24", "region": "GLOBAL"},
            {"ip_prefix": "not-a-net", "region": "us-east-1"},
            {"ip_prefix": "3.0.3.0/24", "region": "us-east-1"},
            {"ip_prefix": "3.0.3.0/24", "region": "eu-west-1"},  # one prefix, two countries: left out
        ],
        "ipv6_prefixes": [{"ipv6_prefix": "2406:da00::/32", "region": "ap-east-1"}],
    }
    (tmp_path / "cloud").mkdir()
    (tmp_path / "cloud" / "aws-ip-ranges.json").write_text(json.dumps(doc))
    src = only(tmp_path, "provider-region")
    assert values_at(src, "3.0.0.7") == ["HK"] and values_at(src, "2406:da00::1") == ["HK"]
    assert values_at(src, "3.0.1.7") == [] and values_at(src, "3.0.2.7") == [] and values_at(src, "3.0.3.7") == []
    assert src.skipped == 3  # the unknown region, the bad network, the conflicting prefix
    assert src.meta.notes == "unknown regions: aws:xx-nowhere-9"
    assert src.meta.date == "2025-07-24"


def test_apples_relay_egress_list_is_a_relay_label_and_a_geofeed(tmp_path: Path) -> None:
    (tmp_path / "cloud").mkdir()
    (tmp_path / "cloud" / "egress-ip-ranges.csv").write_text(
        "172.224.226.0/27,GB,GB-EN,London,\n172.224.226.32/27,DE,DE-BE,Berlin,\n2a02:26f7:b3c0:4000::/64,FR,FR-IDF,Paris,\n"
        "bogus-line\n"
    )
    relay = only(tmp_path, "apple-relay")
    assert values_at(relay, "172.224.226.10") == [("relay", "Apple iCloud Private Relay")]
    assert relay.skipped == 1
    feed = only(tmp_path, "geofeed")
    assert values_at(feed, "172.224.226.10") == ["GB"] and values_at(feed, "172.224.226.40") == ["DE"]
    assert values_at(feed, "2a02:26f7:b3c0:4000::1") == ["FR"]
