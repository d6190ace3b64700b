"""``geowarden intel update``: download the public originals, verify them, build, switch.

Every source geowarden can download is one row of ``REMOTES`` below: where it lives, where it
goes in the download directory (the layout of ``shared/data``, so ``sources.discover`` reads
it like any other source directory), how it is verified and under which licence it comes.

One update:

1. takes ``$GEOWARDEN_HOME/downloads/.lock`` (one update at a time) and streams every file into
   a fresh staging directory ``downloads/<UTC timestamp>/``, with progress bars on the console;
2. verifies each file: the published checksum where there is one (the RIRs' ``.md5``), the
   format (an MMDB of the right ``database_type``, an RIR statistics file of the right
   registry, JSON holding networks, a list of addresses), and sanity: a file with less than
   half the entries of the same file in the last good download is refused. A required source
   (DB-IP country and ASN) that fails fails the update; any other is skipped, with its reason;
3. compiles the staging directory into a snapshot under the store's lock and only then makes
   it current. Any failure leaves the previous snapshot current and untouched, and removes the
   staging directory. On success the staging directory is recorded in ``downloads/LAST`` (the
   baseline of the next sanity check) and older download directories are deleted.

Left out on purpose: Microsoft Azure's ServiceTags file. Its URL carries a weekly-changing
file name that is only found by scraping a download page, which is too brittle to automate
here; use ``geowarden intel build --from DIR`` with a manually downloaded copy instead.

Nothing is downloaded unless the operator runs ``geowarden intel update``.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shutil
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import maxminddb
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from geowarden import __version__
from geowarden.errors import DownloadError, GeowardenError, SourceError
from geowarden.intel.build import build_snapshot
from geowarden.intel.sources import discover
from geowarden.intel.store import SnapshotStore
from geowarden.settings import Settings


class Check(enum.StrEnum):
    """How a downloaded file is verified (and its entries counted for the sanity check)."""

    MMDB_COUNTRY = "mmdb-country"  # MMDB whose database_type starts with "DBIP-Country-Lite"
    MMDB_ASN = "mmdb-asn"  # MMDB whose database_type starts with "DBIP-ASN-Lite"
    RIR = "rir"  # RIR delegated(-extended) statistics of the registry named in the file name
    JSON = "json"  # JSON document holding at least one network (CIDR) string
    LIST = "list"  # one address or network a line ('#' comments allowed)


@dataclass(frozen=True, slots=True, kw_only=True)
class Remote:
    """One public original that ``intel update`` downloads."""

    name: str  # stable id, used in the result and in messages
    url: str  # "{month}" stands for YYYY-MM of a monthly release (this month, else the last)
    dest: str  # path under the download directory; "{date}" stands for today's UTC date
    check: Check
    licence: str
    required: bool = False  # a required source that fails fails the whole update
    gzip: bool = False  # served gzip-compressed: stored decompressed
    md5: bool = False  # an MD5 checksum is published at url + ".md5"


_RIR = "NRO/RIR public statistics"
_PROVIDER = "provider-published ranges (provider's site terms)"

#: Everything ``intel update`` downloads, in download order (required sources first).
REMOTES: tuple[Remote, ...] = (
    Remote(
        name="dbip-country",
        url="https://download.db-ip.com/free/dbip-country-lite-{month}.mmdb.gz",
        dest="ip/dbip-country-lite.mmdb",
        check=Check.MMDB_COUNTRY,
        licence="CC-BY-4.0",
        required=True,
        gzip=True,
    ),
    Remote(
        name="dbip-asn",
        url="https://download.db-ip.com/free/dbip-asn-lite-{month}.mmdb.gz",
        dest="ip/dbip-asn-lite.mmdb",
        check=Check.MMDB_ASN,
        licence="CC-BY-4.0",
        required=True,
        gzip=True,
    ),
    Remote(
        name="rir-arin",
        url="https://ftp.arin.net/pub/stats/arin/delegated-arin-extended-latest",
        dest="ip/rir/delegated-arin-extended-latest",
        check=Check.RIR,
        licence=_RIR,
        md5=True,
    ),
    Remote(
        name="rir-ripencc",
        url="https://ftp.ripe.net/pub/stats/ripencc/delegated-ripencc-extended-latest",
        dest="ip/rir/delegated-ripencc-extended-latest",
        check=Check.RIR,
        licence=_RIR,
        md5=True,
    ),
    Remote(
        name="rir-apnic",
        url="https://ftp.apnic.net/stats/apnic/delegated-apnic-extended-latest",
        dest="ip/rir/delegated-apnic-extended-latest",
        check=Check.RIR,
        licence=_RIR,
        md5=True,
    ),
    Remote(
        name="rir-lacnic",
        url="https://ftp.lacnic.net/pub/stats/lacnic/delegated-lacnic-extended-latest",
        dest="ip/rir/delegated-lacnic-extended-latest",
        check=Check.RIR,
        licence=_RIR,
        md5=True,
    ),
    Remote(
        name="rir-afrinic",
        url="https://ftp.afrinic.net/pub/stats/afrinic/delegated-afrinic-extended-latest",
        dest="ip/rir/delegated-afrinic-extended-latest",
        check=Check.RIR,
        licence=_RIR,
        md5=True,
    ),
    Remote(
        name="aws",
        url="https://ip-ranges.amazonaws.com/ip-ranges.json",
        dest="cloud/aws-ip-ranges.json",
        check=Check.JSON,
        licence=_PROVIDER,
    ),
    Remote(
        name="google-cloud",
        url="https://www.gstatic.com/ipranges/cloud.json",
        dest="cloud/google-cloud-ip-ranges.json",
        check=Check.JSON,
        licence=_PROVIDER,
    ),
    Remote(
        name="oracle-cloud",
        url="https://docs.oracle.com/en-us/iaas/tools/public_ip_ranges.json",
        dest="cloud/oracle-cloud-ip-ranges.json",
        check=Check.JSON,
        licence=_PROVIDER,
    ),
    Remote(
        name="github",
        url="https://api.github.com/meta",
        dest="cloud/github-ip-ranges.json",
        check=Check.JSON,
        licence=_PROVIDER,
    ),
    Remote(
        name="cloudflare-v4",
        url="https://www.cloudflare.com/ips-v4",
        dest="cloud/cloudflare-v4-ip-ranges.txt",
        check=Check.LIST,
        licence=_PROVIDER,
    ),
    Remote(
        name="cloudflare-v6",
        url="https://www.cloudflare.com/ips-v6",
        dest="cloud/cloudflare-v6-ip-ranges.txt",
        check=Check.LIST,
        licence=_PROVIDER,
    ),
    Remote(
        name="fastly",
        url="https://api.fastly.com/public-ip-list",
        dest="cloud/fastly-ip-ranges.json",
        check=Check.JSON,
        licence=_PROVIDER,
    ),
    Remote(
        name="tor-exits",
        url="https://check.torproject.org/torbulkexitlist",
        dest="anonymizers/tor/exit-nodes-{date}.txt",
        check=Check.LIST,
        licence="public (The Tor Project)",
    ),
    Remote(
        name="x4bnet-vpn-ipv4",
        url="https://raw.githubusercontent.com/X4BNet/lists_vpn/main/output/vpn/ipv4.txt",
        dest="anonymizers/x4bnet/output_vpn_ipv4.txt",
        check=Check.LIST,
        licence="MIT",
    ),
    Remote(
        name="x4bnet-datacenter-ipv4",
        url="https://raw.githubusercontent.com/X4BNet/lists_vpn/main/output/datacenter/ipv4.txt",
        dest="anonymizers/x4bnet/output_datacenter_ipv4.txt",
        check=Check.LIST,
        licence="MIT",
    ),
)

_MMDB_TYPES = {Check.MMDB_COUNTRY: "DBIP-Country-Lite", Check.MMDB_ASN: "DBIP-ASN-Lite"}

USER_AGENT = f"geowarden/{__version__}"
LAST_FILE = "LAST"  # under downloads_dir: the name of the last good download directory
MAX_BYTES = 1 << 30  # refuse any single file larger than this (after decompression)
MAX_BAD_LINES = 0.05  # a list with more than this share of lines that are not addresses is refused
MIN_KEEP_RATIO = 0.5  # a file with fewer than this share of the previous file's entries is refused
CHUNK = 1 << 16

_STAMP_RE = re.compile(r"^\d{8}T\d{6}Z(?:-\d+)?$")
_MD5_RE = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])")
_RIR_NAME_RE = re.compile(r"delegated-([a-z]+)-extended")


class _NotFoundError(DownloadError):
    """The server answered 404 (a monthly release that is not out yet)."""


def default_client() -> httpx.Client:
    """The HTTP client ``run_update`` uses when none is given."""
    return httpx.Client(
        timeout=httpx.Timeout(60.0, connect=15.0),
        follow_redirects=True,
        headers={"User-Agent": USER_AGENT},
    )


def run_update(
    settings: Settings,
    *,
    quiet: bool = False,
    console: Console | None = None,
    client: httpx.Client | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Download, verify, build and activate a new snapshot; return what was done.

    Returns ``{"snapshot": id, "path": str, "downloaded": [{name, url, bytes, sha256}],
    "skipped": [{name, url, reason}]}``. Raises ``DownloadError`` when a required source
    cannot be downloaded or verified and ``SourceError`` when the build fails; the previous
    snapshot then stays current.
    """
    con = console or Console(stderr=True, highlight=False)
    day = today or datetime.now(UTC).date()
    downloads = settings.downloads_dir
    http = client or default_client()
    try:
        with _exclusive(downloads):
            return _update(settings, downloads, http, con, quiet=quiet, day=day)
    finally:
        if client is None:
            http.close()


def _update(
    settings: Settings, downloads: Path, http: httpx.Client, con: Console, *, quiet: bool, day: date
) -> dict[str, Any]:
    previous = _last_good(downloads)
    staging = _fresh_dir(downloads)

    def say(msg: str) -> None:
        if not quiet:
            con.print(f"[dim]· {escape(msg)}[/dim]")

    try:
        say(f"downloading {len(REMOTES)} public sources into {staging}")
        downloaded, skipped = _fetch_all(http, staging, previous, con, quiet=quiet, day=day)
        snap = _build_and_activate(settings, staging, say)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _write_last(downloads, staging)
    _prune_downloads(downloads, keep=staging)
    if settings.snapshot is not None:
        con.print(
            "[yellow]note:[/yellow] GEOWARDEN_SNAPSHOT is set and pins another snapshot; "
            "unset it to use the updated one"
        )
    return {"snapshot": snap.name, "path": str(snap), "downloaded": downloaded, "skipped": skipped}


# -- downloading -----------------------------------------------------------------------------


def _fetch_all(
    http: httpx.Client, staging: Path, previous: Path | None, con: Console, *, quiet: bool, day: date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    downloaded: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    bars = Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=con,
        disable=quiet,
    )
    with bars:
        for remote in REMOTES:
            try:
                downloaded.append(_fetch_one(http, remote, staging, previous, bars, day=day))
            except DownloadError as exc:
                if remote.required:
                    raise
                url = remote.url.replace("{month}", _month(day))
                reason = exc.message.removeprefix(f"{remote.name}: ")
                skipped.append({"name": remote.name, "url": url, "reason": reason})
                con.print(f"[yellow]skipped[/yellow] {remote.name}: {escape(reason)}")
    return downloaded, skipped


def _fetch_one(
    http: httpx.Client, remote: Remote, staging: Path, previous: Path | None, bars: Progress, *, day: date
) -> dict[str, Any]:
    dest = staging / remote.dest.replace("{date}", day.isoformat())
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"{remote.name}: cannot create {dest.parent}: {_one_line(exc)}") from None
    try:
        url, sha256, md5, size = _fetch_release(http, remote, part, bars, day=day)
        if remote.md5:
            _check_md5(http, remote.name, url + ".md5", md5)
        entries = _count(remote, part)
        if previous is not None:
            _check_shrink(remote, entries, _previous_file(remote, previous))
        part.replace(dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return {"name": remote.name, "url": url, "bytes": size, "sha256": sha256}


def _fetch_release(
    http: httpx.Client, remote: Remote, part: Path, bars: Progress, *, day: date
) -> tuple[str, str, str, int]:
    """Download ``remote``, trying last month's release when this month's is not out yet."""
    if "{month}" not in remote.url:
        return remote.url, *_stream(http, remote, remote.url, part, bars)
    months = [_month(day), _month(_previous_month(day))]
    for i, month in enumerate(months):
        url = remote.url.replace("{month}", month)
        try:
            return url, *_stream(http, remote, url, part, bars)
        except _NotFoundError:
            if i == len(months) - 1:
                raise DownloadError(f"{remote.name}: no release for {' or '.join(months)} (HTTP 404)") from None
    raise AssertionError("unreachable")  # pragma: no cover


def _stream(http: httpx.Client, remote: Remote, url: str, part: Path, bars: Progress) -> tuple[str, str, int]:
    """Stream ``url`` into ``part`` (decompressed if gzip); return sha256, md5 and size stored."""
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)  # only to compare with the published checksum
    size = 0
    gunzip = _Gunzip() if remote.gzip else None
    try:
        with http.stream("GET", url) as resp:
            if resp.status_code == 404:
                raise _NotFoundError(f"{remote.name}: {url}: HTTP 404")
            if resp.status_code != 200:
                raise DownloadError(f"{remote.name}: {url}: HTTP {resp.status_code}")
            length = resp.headers.get("content-length", "")
            task: TaskID = bars.add_task(remote.name, total=int(length) if length.isdigit() else None)
            # Bytes on the wire: httpx counts them only when it decodes a Content-Encoding itself.
            encoded = bool(resp.headers.get("content-encoding"))
            received = 0
            with part.open("wb") as fh:
                for chunk in resp.iter_bytes(CHUNK):
                    received = resp.num_bytes_downloaded if encoded else received + len(chunk)
                    data = gunzip.feed(chunk) if gunzip else chunk
                    size += len(data)
                    if size > MAX_BYTES:
                        raise DownloadError(f"{remote.name}: larger than {MAX_BYTES >> 20} MiB, refused")
                    sha256.update(data)
                    md5.update(data)
                    fh.write(data)
                    bars.update(task, completed=received)
                if gunzip:
                    tail = gunzip.finish()
                    size += len(tail)
                    sha256.update(tail)
                    md5.update(tail)
                    fh.write(tail)
            if length.isdigit() and received < int(length):
                raise DownloadError(f"{remote.name}: truncated download ({received:,} of {int(length):,} bytes)")
    except httpx.HTTPError as exc:
        raise DownloadError(f"{remote.name}: {url}: {type(exc).__name__}: {_one_line(exc)}") from None
    except zlib.error as exc:
        raise DownloadError(f"{remote.name}: corrupt gzip data from {url}: {_one_line(exc)}") from None
    except OSError as exc:
        raise DownloadError(f"{remote.name}: cannot write {part}: {_one_line(exc)}") from None
    if gunzip and not gunzip.complete:
        raise DownloadError(f"{remote.name}: truncated gzip data from {url}")
    return sha256.hexdigest(), md5.hexdigest(), size


class _Gunzip:
    """Streaming gzip decompression (multi-member aware) that notices a truncated stream."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(wbits=31)
        self.complete = False

    def feed(self, chunk: bytes) -> bytes:
        out = [self._d.decompress(chunk)]
        while self._d.eof and self._d.unused_data:  # another gzip member follows
            rest = self._d.unused_data
            self._d = zlib.decompressobj(wbits=31)
            out.append(self._d.decompress(rest))
        self.complete = self._d.eof
        return b"".join(out)

    def finish(self) -> bytes:
        tail = self._d.flush()
        self.complete = self._d.eof
        return tail


def _check_md5(http: httpx.Client, name: str, url: str, actual: str) -> None:
    try:
        resp = http.get(url)
    except httpx.HTTPError as exc:
        raise DownloadError(f"{name}: checksum {url}: {type(exc).__name__}: {_one_line(exc)}") from None
    if resp.status_code != 200:
        raise DownloadError(f"{name}: checksum {url}: HTTP {resp.status_code}")
    found = _MD5_RE.search(resp.text)
    if found is None:
        raise DownloadError(f"{name}: no MD5 checksum in {url}")
    if found.group(0).lower() != actual:
        raise DownloadError(f"{name}: MD5 mismatch (published {found.group(0).lower()}, got {actual})")


# -- verifying -------------------------------------------------------------------------------


def _count(remote: Remote, path: Path) -> int:
    """Verify the format of ``path`` and return its number of entries (raise DownloadError)."""
    try:
        match remote.check:
            case Check.MMDB_COUNTRY | Check.MMDB_ASN:
                return _count_mmdb(path, _MMDB_TYPES[remote.check])
            case Check.RIR:
                found = _RIR_NAME_RE.search(Path(remote.dest).name)
                return _count_rir(path, found.group(1) if found else "")
            case Check.JSON:
                return _count_json(path)
            case Check.LIST:
                return _count_list(path)
    except DownloadError as exc:
        raise DownloadError(f"{remote.name}: {exc.message}") from None
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise DownloadError(f"{remote.name}: unreadable: {_one_line(exc)}") from None
    raise AssertionError(remote.check)  # pragma: no cover


def _count_mmdb(path: Path, expected_type: str) -> int:
    with maxminddb.open_database(str(path)) as reader:
        meta = reader.metadata()
    if not meta.database_type.startswith(expected_type):
        raise DownloadError(f"MMDB database_type is {meta.database_type!r}, expected {expected_type!r}")
    if meta.node_count <= 0:
        raise DownloadError("MMDB holds no networks")
    return int(meta.node_count)


def _count_rir(path: Path, registry: str) -> int:
    records = 0
    header: list[str] | None = None
    with path.open(encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split("|")
            if header is None:
                header = fields
                if len(fields) < 2 or fields[1] != registry:
                    raise DownloadError(f"not the RIR statistics of {registry!r} (header {line[:60]!r})")
                continue
            if len(fields) >= 7 and fields[2] in ("ipv4", "ipv6", "asn") and fields[1] != "*":
                records += 1
    if not records:
        raise DownloadError("no delegation records")
    return records


def _count_json(path: Path) -> int:
    try:
        doc = json.loads(path.read_bytes())
    except ValueError:
        raise DownloadError("not JSON") from None
    count = sum(1 for text in _strings(doc) if "/" in text and _is_network(text))
    if not count:
        raise DownloadError("JSON holds no networks")
    return count


def _strings(node: Any) -> Iterator[str]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _count_list(path: Path) -> int:
    good = bad = 0
    with path.open(encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if _is_network(line.split()[0]):
                good += 1
            else:
                bad += 1
    if not good:
        raise DownloadError("no addresses in the list")
    if bad > MAX_BAD_LINES * (good + bad):
        raise DownloadError(f"{bad:,} of {good + bad:,} lines are not addresses")
    return good


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _previous_file(remote: Remote, previous: Path) -> Path | None:
    pattern = remote.dest.replace("{date}", "*")
    if "*" not in pattern:
        path = previous / pattern
        return path if path.is_file() else None
    matches = sorted(previous.glob(pattern))
    return matches[-1] if matches else None


def _check_shrink(remote: Remote, entries: int, before: Path | None) -> None:
    if before is None:
        return
    try:
        old = _count(remote, before)
    except DownloadError:
        return  # the old file no longer verifies: no baseline
    if entries < old * MIN_KEEP_RATIO:
        raise DownloadError(
            f"{remote.name}: {entries:,} entries, down from {old:,} in the last good download "
            f"(more than {1 - MIN_KEEP_RATIO:.0%} fewer): refused"
        )


# -- building and bookkeeping ----------------------------------------------------------------


def _build_and_activate(settings: Settings, staging: Path, say: Callable[[str], None]) -> Path:
    store = SnapshotStore(settings.intel_dir)
    say("reading the downloaded sources")
    sources = discover(staging)
    if not sources:
        raise SourceError(f"no recognised source in {staging}")
    with store.lock():
        existing = {p.name for p in store.dir.iterdir()}
        path = build_snapshot(sources, store.dir, note=f"update {staging.name}", progress=say)
        try:
            store.activate(path)
        except GeowardenError as exc:
            if path.name not in existing:
                shutil.rmtree(path, ignore_errors=True)
            raise SourceError(f"the new snapshot {path.name} does not load: {exc.message}") from None
    say(f"snapshot {path.name} is now current")
    return path


@contextlib.contextmanager
def _exclusive(downloads: Path) -> Iterator[None]:
    try:
        downloads.mkdir(parents=True, exist_ok=True)
        fh = (downloads / ".lock").open("a")
    except OSError as exc:
        raise DownloadError(f"cannot use {downloads}: {_one_line(exc)}") from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DownloadError("another `geowarden intel update` is running") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _fresh_dir(downloads: Path) -> Path:
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    for i in range(100):
        path = downloads / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise DownloadError(f"cannot create {path}: {_one_line(exc)}") from None
        return path
    raise DownloadError(f"cannot create a fresh download directory under {downloads}")


def _last_good(downloads: Path) -> Path | None:
    try:
        name = (downloads / LAST_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    path = downloads / name
    return path if _STAMP_RE.match(name) and path.is_dir() else None


def _write_last(downloads: Path, staging: Path) -> None:
    tmp = downloads / f".{LAST_FILE}.{os.getpid()}"
    tmp.write_text(staging.name + "\n", encoding="utf-8")
    tmp.replace(downloads / LAST_FILE)


def _prune_downloads(downloads: Path, *, keep: Path) -> None:
    """Delete download directories other than ``keep`` (only the ones this module names)."""
    for path in downloads.iterdir():
        if path.name != keep.name and _STAMP_RE.match(path.name) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def _month(day: date) -> str:
    return f"{day:%Y-%m}"


def _previous_month(day: date) -> date:
    return date(day.year - 1, 12, 1) if day.month == 1 else date(day.year, day.month - 1, 1)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
