"""``intel update`` against an ``httpx.MockTransport`` that serves the real files of ../shared/data.

One full update (real DB-IP country and ASN MMDBs, real RIR, cloud, Tor and X4BNet files) is
run once per module; the failure tests fail before the build, or build from tiny sources.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

import geowarden
from geowarden.cli.console import ConsoleUpdateProgress
from geowarden.errors import DownloadError
from geowarden.intel import update
from geowarden.intel.snapshot import Snapshot
from geowarden.intel.sources.base import SourceData
from geowarden.intel.store import SnapshotStore
from geowarden.settings import Settings
from helpers import require_shared, tiny_sources

TODAY = date(2026, 3, 10)
DBIP = "https://download.db-ip.com/free/dbip-{kind}-lite-{month}.mmdb.gz"
COUNTRY_NOW = DBIP.format(kind="country", month="2026-03")
COUNTRY_PREV = DBIP.format(kind="country", month="2026-02")
ASN_NOW = DBIP.format(kind="asn", month="2026-03")
ASN_PREV = DBIP.format(kind="asn", month="2026-02")
TOR = "https://check.torproject.org/torbulkexitlist"
FASTLY = "https://api.fastly.com/public-ip-list"
LACNIC = "https://ftp.lacnic.net/pub/stats/lacnic/delegated-lacnic-extended-latest"
AFRINIC = "https://ftp.afrinic.net/pub/stats/afrinic/delegated-afrinic-extended-latest"

# Where each optional original is served from, and the file of ../shared/data it really is.
PLAIN = {
    "https://ip-ranges.amazonaws.com/ip-ranges.json": "cloud/aws-ip-ranges.json",
    "https://www.gstatic.com/ipranges/cloud.json": "cloud/google-cloud-ip-ranges.json",
    "https://docs.oracle.com/en-us/iaas/tools/public_ip_ranges.json": "cloud/oracle-cloud-ip-ranges.json",
    "https://api.github.com/meta": "cloud/github-ip-ranges.json",
    "https://www.cloudflare.com/ips-v4": "cloud/cloudflare-v4-ip-ranges.txt",
    "https://www.cloudflare.com/ips-v6": "cloud/cloudflare-v6-ip-ranges.txt",
    FASTLY: "cloud/fastly-ip-ranges.json",
    TOR: "anonymizers/tor/exit-nodes-2026-02-22.txt",
    "https://raw.githubusercontent.com/X4BNet/lists_vpn/main/output/vpn/ipv4.txt": (
        "anonymizers/x4bnet/output_vpn_ipv4.txt"
    ),
    "https://raw.githubusercontent.com/X4BNet/lists_vpn/main/output/datacenter/ipv4.txt": (
        "anonymizers/x4bnet/output_datacenter_ipv4.txt"
    ),
    LACNIC: "ip/rir/delegated-lacnic-extended-latest",
    AFRINIC: "ip/rir/delegated-afrinic-extended-latest",
}


@dataclass
class Server:
    """A mock of the public internet: URL -> body; anything else is a 404."""

    routes: dict[str, bytes]
    errors: dict[str, Exception] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests.append(url)
        if url in self.errors:
            raise self.errors[url]
        body = self.routes.get(url)
        if body is None:
            return httpx.Response(404, text="not found")
        return httpx.Response(200, content=body)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle))


APPLE_RELAY = "https://mask-api.icloud.com/egress-ip-ranges.csv"


@pytest.fixture(scope="module")
def originals() -> dict[str, bytes]:
    """Every URL the happy path serves, with the real bytes (DB-IP gzipped, RIRs with .md5)."""
    data = require_shared()
    routes = {url: (data / rel).read_bytes() for url, rel in PLAIN.items()}
    routes[COUNTRY_NOW] = gzip.compress((data / "ip/dbip-country-lite.mmdb").read_bytes(), compresslevel=1)
    routes[ASN_NOW] = gzip.compress((data / "ip/dbip-asn-lite.mmdb").read_bytes(), compresslevel=1)
    # The RIRs publish their checksums in slightly different formats.
    lacnic_md5 = hashlib.md5(routes[LACNIC], usedforsecurity=False).hexdigest()
    afrinic_md5 = hashlib.md5(routes[AFRINIC], usedforsecurity=False).hexdigest()
    routes[LACNIC + ".md5"] = f"MD5 (delegated-lacnic-extended-latest) = {lacnic_md5}\n".encode()
    routes[AFRINIC + ".md5"] = f"{afrinic_md5}  delegated-afrinic-extended-latest\n".encode()
    # Apple's relay egress list is not in the shared data: a handwritten one in its format.
    routes[APPLE_RELAY] = b"172.224.226.0/27,GB,GB-EN,London,\n2a02:26f7:b3c0:4000::/64,FR,FR-IDF,Paris,\n"
    return routes


def _settings(home: Path) -> Settings:
    return Settings(home=home)


def _tiny_current(settings: Settings) -> Path:
    """Make a tiny handmade snapshot the current one, as a previous update would have."""
    return SnapshotStore(settings.intel_dir).build_and_activate(tiny_sources(), note="before")


def _console(*, quiet: bool = False) -> tuple[ConsoleUpdateProgress, io.StringIO]:
    """What the command line passes, drawing into a buffer."""
    buf = io.StringIO()
    return ConsoleUpdateProgress(Console(file=buf, width=200, highlight=False), quiet=quiet), buf


def _run(settings: Settings, **kwargs: Any) -> dict[str, Any]:
    return update.run_update(settings.intel_dir, settings.downloads_dir, **kwargs)


# -- the full update, once ------------------------------------------------------------------


@dataclass
class FullRun:
    settings: Settings
    server: Server
    result: dict[str, Any]
    output: str


@pytest.fixture(scope="module")
def full_run(originals: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> FullRun:
    routes = dict(originals)
    # This month's country release is not out yet: last month's must be used.
    routes[COUNTRY_PREV] = routes.pop(COUNTRY_NOW)
    # AFRINIC's published checksum does not match what was served: skipped, with the reason.
    routes[AFRINIC + ".md5"] = b"MD5 (delegated-afrinic-extended-latest) = " + b"0" * 32 + b"\n"
    server = Server(routes)
    settings = _settings(tmp_path_factory.mktemp("home"))
    con, buf = _console()
    with server.client() as client:
        result = _run(settings, progress=con, client=client, today=TODAY)
    return FullRun(settings, server, result, buf.getvalue())


def test_full_update_builds_and_activates_a_snapshot(full_run: FullRun) -> None:
    store = SnapshotStore(full_run.settings.intel_dir)
    current = store.current_path()
    assert current is not None
    assert current.name == full_run.result["snapshot"]
    assert str(current) == full_run.result["path"]
    snap = Snapshot.open(current)
    assert snap.lookup("1.2.4.8").country == "CN"
    aws = json.loads((require_shared() / "cloud/aws-ip-ranges.json").read_text())
    prefix = next(p["ip_prefix"] for p in aws["prefixes"] if p["service"] == "EC2")
    rec = snap.lookup(prefix.split("/")[0])
    assert rec.hosting
    assert "aws" in rec.sources["labels"]["hosting"]
    assert {s["name"] for s in snap.info()["sources"]} >= {"dbip-country", "dbip-asn", "aws", "tor-exits"}


def test_full_update_reports_what_it_downloaded(full_run: FullRun, originals: dict[str, bytes]) -> None:
    got = {d["name"]: d for d in full_run.result["downloaded"]}
    assert set(got) == {
        "dbip-country", "dbip-asn", "rir-lacnic", "aws", "google-cloud", "oracle-cloud", "github",
        "cloudflare-v4", "cloudflare-v6", "fastly", "apple-relay", "tor-exits", "x4bnet-vpn-ipv4",
        "x4bnet-datacenter-ipv4",
    }  # fmt: skip
    data = require_shared()
    real = (data / "ip/dbip-country-lite.mmdb").read_bytes()
    assert got["dbip-country"]["bytes"] == len(real)  # stored decompressed
    assert got["dbip-country"]["sha256"] == hashlib.sha256(real).hexdigest()
    assert (
        got["aws"]["sha256"] == hashlib.sha256(originals["https://ip-ranges.amazonaws.com/ip-ranges.json"]).hexdigest()
    )
    assert got["tor-exits"]["url"] == TOR


def test_full_update_lays_files_out_like_shared_data(full_run: FullRun) -> None:
    downloads = full_run.settings.downloads_dir
    last = downloads / (downloads / "LAST").read_text().strip()
    files = sorted(str(p.relative_to(last)) for p in last.rglob("*") if p.is_file())
    assert "anonymizers/tor/exit-nodes-2026-03-10.txt" in files
    for rel in ("ip/dbip-country-lite.mmdb", "ip/dbip-asn-lite.mmdb", "cloud/aws-ip-ranges.json",
                "ip/rir/delegated-lacnic-extended-latest", "anonymizers/x4bnet/output_vpn_ipv4.txt"):  # fmt: skip
        assert rel in files
        if not rel.endswith(".mmdb"):
            assert (last / rel).read_bytes() == (require_shared() / rel).read_bytes()
    assert not [f for f in files if f.endswith(".part")]
    assert "ip/rir/delegated-afrinic-extended-latest" not in files  # did not verify


def test_previous_month_is_used_when_this_month_is_not_out(full_run: FullRun) -> None:
    got = {d["name"]: d["url"] for d in full_run.result["downloaded"]}
    assert got["dbip-country"] == COUNTRY_PREV
    assert got["dbip-asn"] == ASN_NOW
    assert full_run.server.requests.index(COUNTRY_NOW) < full_run.server.requests.index(COUNTRY_PREV)
    assert ASN_PREV not in full_run.server.requests


def test_md5_mismatch_skips_that_rir_source(full_run: FullRun) -> None:
    skipped = {s["name"]: s for s in full_run.result["skipped"]}
    assert "MD5 mismatch" in skipped["rir-afrinic"]["reason"]
    assert skipped["rir-afrinic"]["url"] == AFRINIC
    for rir in ("arin", "ripencc", "apnic"):  # not served at all
        assert "HTTP 404" in skipped[f"rir-{rir}"]["reason"]
    assert "skipped rir-afrinic" in full_run.output


# -- failures before the build: the previous snapshot stays current ------------------------------


def _fail_run(tmp_path: Path, routes: dict[str, bytes], today: date = TODAY) -> tuple[Settings, Path, Server, str]:
    settings = _settings(tmp_path)
    before = _tiny_current(settings)
    server = Server(routes)
    con, _ = _console()
    with server.client() as client, pytest.raises(DownloadError) as info:
        _run(settings, progress=con, client=client, today=today)
    message = info.value.message
    assert "\n" not in message
    store = SnapshotStore(settings.intel_dir)
    assert store.current_path() == before
    assert Snapshot.open(before).lookup("1.2.4.8").country == "CN"
    assert [p.name for p in settings.intel_dir.iterdir() if p.is_dir() and not p.name.startswith(".")] == [before.name]
    assert not [p for p in settings.downloads_dir.iterdir() if p.is_dir()]  # staging removed
    return settings, before, server, message


def test_dbip_missing_for_both_months_fails_and_keeps_the_current_snapshot(
    tmp_path: Path, originals: dict[str, bytes]
) -> None:
    routes = {u: b for u, b in originals.items() if not u.startswith("https://download.db-ip.com/")}
    *_, message = _fail_run(tmp_path, routes)
    assert message == "dbip-country: no release for 2026-03 or 2026-02 (HTTP 404)"


def test_previous_month_wraps_to_december(tmp_path: Path, originals: dict[str, bytes]) -> None:
    routes = {DBIP.format(kind="country", month="2025-12"): originals[COUNTRY_NOW]}
    _, _, server, message = _fail_run(tmp_path, routes, today=date(2026, 1, 5))
    assert DBIP.format(kind="country", month="2026-01") in server.requests
    assert message == "dbip-asn: no release for 2026-01 or 2025-12 (HTTP 404)"  # country got through


def test_truncated_gzip_fails_and_keeps_the_current_snapshot(tmp_path: Path, originals: dict[str, bytes]) -> None:
    routes = dict(originals)
    routes[COUNTRY_NOW] = routes[COUNTRY_NOW][: len(routes[COUNTRY_NOW]) // 2]
    *_, message = _fail_run(tmp_path, routes)
    assert message.startswith("dbip-country: truncated gzip")


def test_wrong_database_type_fails(tmp_path: Path, originals: dict[str, bytes]) -> None:
    routes = dict(originals)
    routes[COUNTRY_NOW] = routes[ASN_NOW]
    *_, message = _fail_run(tmp_path, routes)
    assert "database_type is 'DBIP-ASN-Lite" in message


# -- sanity against the last good download (tiny build) --------------------------------------------


@pytest.fixture
def tiny_build(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Build from tiny handmade sources instead of the downloaded files (the build is not under test)."""
    seen: list[Path] = []

    def fake_discover(directory: Path, *, exclude: Any = ()) -> list[SourceData]:
        seen.append(directory)
        return tiny_sources()

    monkeypatch.setattr(update, "discover", fake_discover)
    return seen


def test_a_list_that_shrank_by_half_is_refused(
    tmp_path: Path, originals: dict[str, bytes], tiny_build: list[Path]
) -> None:
    settings = _settings(tmp_path)
    previous = settings.downloads_dir / "20260301T000000Z"
    older = settings.downloads_dir / "20260201T000000Z"
    (previous / "anonymizers/tor").mkdir(parents=True)
    older.mkdir()
    (previous / "anonymizers/tor/exit-nodes-2026-03-01.txt").write_bytes(originals[TOR])
    (settings.downloads_dir / "LAST").write_text("20260301T000000Z\n")
    lines = originals[TOR].splitlines(keepends=True)
    routes = dict(originals)
    routes[TOR] = b"".join(lines[: len(lines) // 3])  # two thirds gone
    routes[FASTLY] = b"<html>maintenance</html>"  # not JSON
    github = "https://api.github.com/meta"
    server = Server(routes, errors={github: httpx.ConnectTimeout("timed out")})
    con, buf = _console()
    with server.client() as client:
        result = _run(settings, progress=con, client=client, today=TODAY)
    skipped = {s["name"]: s["reason"] for s in result["skipped"]}
    assert skipped["github"] == f"{github}: ConnectTimeout: timed out"
    assert "last good download" in skipped["tor-exits"]
    assert "refused" in skipped["tor-exits"]
    assert skipped["fastly"] == "not JSON"
    assert "x4bnet-vpn-ipv4" not in skipped  # no previous copy: nothing to compare with
    staging = tiny_build[0]
    assert not (staging / "anonymizers/tor/exit-nodes-2026-03-10.txt").exists()
    assert not (staging / "cloud/fastly-ip-ranges.json").exists()
    # Success: the new download is the baseline now, older download directories are gone.
    assert (settings.downloads_dir / "LAST").read_text().strip() == staging.name
    assert sorted(p.name for p in settings.downloads_dir.iterdir() if p.is_dir()) == [staging.name]
    assert SnapshotStore(settings.intel_dir).current_path() == Path(result["path"])
    assert "skipped tor-exits" in buf.getvalue()


def test_a_list_that_kept_its_size_is_accepted(
    tmp_path: Path, originals: dict[str, bytes], tiny_build: list[Path]
) -> None:
    settings = _settings(tmp_path)
    con, _ = _console()
    for _ in range(2):  # the second run compares with the first
        with Server(dict(originals)).client() as client:
            result = _run(settings, progress=con, client=client, today=TODAY)
        assert {s["name"] for s in result["skipped"]} == {"rir-arin", "rir-ripencc", "rir-apnic"}
    assert len(tiny_build) == 2
    assert not tiny_build[0].exists()
    assert (settings.downloads_dir / "LAST").read_text().strip() == tiny_build[1].name


def test_quiet_prints_nothing_when_nothing_is_skipped(
    tmp_path: Path, originals: dict[str, bytes], tiny_build: list[Path]
) -> None:
    routes = dict(originals)
    for rir, path in (("arin", "pub/stats/arin"), ("ripencc", "pub/stats/ripencc"), ("apnic", "stats/apnic")):
        host = {"ripencc": "ripe"}.get(rir, rir)
        url = f"https://ftp.{host}.net/{path}/delegated-{rir}-extended-latest"
        body = originals[LACNIC].replace(b"lacnic", rir.encode())  # a well-formed file of that registry
        routes[url] = body
        routes[url + ".md5"] = hashlib.md5(body, usedforsecurity=False).hexdigest().encode()
    con, buf = _console(quiet=True)
    with Server(routes).client() as client:
        result = _run(_settings(tmp_path), progress=con, client=client, today=TODAY)
    assert result["skipped"] == []
    assert buf.getvalue() == ""


def test_another_update_running_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings.downloads_dir.mkdir(parents=True)
    with (settings.downloads_dir / ".lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with Server({}).client() as client, pytest.raises(DownloadError, match="another"):
            _run(settings, client=client, today=TODAY)


def test_default_client_identifies_itself() -> None:
    with update.default_client() as client:
        assert client.headers["User-Agent"] == f"geowarden/{geowarden.__version__}"
        assert client.follow_redirects
        assert client.timeout.connect is not None


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        (b"MD5 (delegated-arin-extended-latest) = {md5}\n", True),
        (b"{md5}\n", True),
        (b"{md5}  delegated-afrinic-extended-latest\n", True),
        (b"MD5 (x) = " + b"f" * 32 + b"\n", False),
        (b"<html>no checksum here</html>", False),
    ],
)
def test_md5_formats(body: bytes, ok: bool) -> None:
    actual = hashlib.md5(b"data", usedforsecurity=False).hexdigest()
    url = "https://example.test/f.md5"
    client = Server({url: body.replace(b"{md5}", actual.upper().encode())}).client()
    check: Callable[[], None] = lambda: update._check_md5(client, "x", url, actual)  # noqa: E731
    if ok:
        check()
    else:
        with pytest.raises(DownloadError):
            check()
    client.close()
