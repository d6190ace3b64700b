"""``geowarden intel update``: download the public originals, verify them, build, switch.

Every source geowarden can download is one entry of ``downloads.yaml`` (read by ``remotes.py``):
where it lives, where it goes in the download directory (the layout of ``shared/data``, so
``sources.discover`` reads it like any other source directory), how it is verified (``verify.py``)
and under which licence it comes.

One update:

1. takes ``$GEOWARDEN_HOME/downloads/.lock`` (one update at a time) and streams every file into
   a fresh staging directory ``downloads/<UTC timestamp>/``, reporting to an ``UpdateProgress``
   (the command line draws bars on stderr; a library caller may pass none);
2. verifies each file: the published checksum where there is one (the RIRs' ``.md5``), the
   format (an MMDB of the right ``database_type``, an RIR statistics file of the right
   registry, JSON holding networks, a list of addresses), and sanity: a file with less than
   half the entries of the same file in the last good download is refused. A required source
   (DB-IP country and ASN) that fails fails the update; any other is skipped, with its reason;
3. compiles the staging directory into a snapshot and makes it current
   (``SnapshotStore.build_and_activate``). Any failure leaves the previous snapshot current and
   untouched, and removes the staging directory. On success the staging directory is recorded
   in ``downloads/LAST`` (the baseline of the next sanity check) and older download directories
   are deleted.

Left out on purpose: Microsoft Azure's ServiceTags file. Its URL carries a weekly-changing
file name that is only found by scraping a download page, which is too brittle to automate
here; use ``geowarden intel build --from DIR`` with a manually downloaded copy instead.

Nothing is downloaded unless the operator runs ``geowarden intel update``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from geowarden import __version__
from geowarden.errors import DownloadError, SnapshotError, SourceError
from geowarden.intel.remotes import Remote, packaged_remotes
from geowarden.intel.sources import discover, shared
from geowarden.intel.store import SnapshotStore
from geowarden.intel.verify import check_shrink, count_entries, one_line, previous_file

USER_AGENT = f"geowarden/{__version__}"
LAST_FILE = "LAST"  # under downloads_dir: the name of the last good download directory
MAX_BYTES = 1 << 30  # refuse any single file larger than this (after decompression)
CHUNK = 1 << 16

_STAMP_RE = re.compile(r"^\d{8}T\d{6}Z(?:-\d+)?$")
_MD5_RE = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])")


class _NotFoundError(DownloadError):
    """The server answered 404 (a monthly release that is not out yet)."""


def default_client() -> httpx.Client:
    """The HTTP client ``run_update`` uses when none is given."""
    return httpx.Client(
        timeout=httpx.Timeout(60.0, connect=15.0),
        follow_redirects=True,
        headers={"User-Agent": USER_AGENT},
    )


class UpdateProgress(Protocol):
    """How an update reports what it does. The command line supplies one that draws on stderr."""

    def step(self, message: str) -> None:
        """One step of the update, as a line ("reading the downloaded sources")."""

    def skipped(self, name: str, reason: str) -> None:
        """An optional source was left out, and why (worth showing even when quiet)."""

    def download(self, name: str, total: int | None) -> Callable[[int], None]:
        """A download begins (``total`` bytes when known); returns what to call with the bytes
        received so far."""

    def downloads_done(self) -> None:
        """Every download has finished or failed."""


class _Silent:
    """The ``UpdateProgress`` of a caller who passes none."""

    def step(self, message: str) -> None:
        pass

    def skipped(self, name: str, reason: str) -> None:
        pass

    def download(self, name: str, total: int | None) -> Callable[[int], None]:
        del name, total
        return lambda _completed: None

    def downloads_done(self) -> None:
        pass


def run_update(
    intel_dir: Path,
    downloads_dir: Path,
    *,
    progress: UpdateProgress | None = None,
    client: httpx.Client | None = None,
    today: date | None = None,
    remotes: Sequence[Remote] | None = None,
    shared_home: Path | None = None,
) -> dict[str, Any]:
    """Download ``remotes`` (default: the packaged ``downloads.yaml``) into ``downloads_dir``,
    verify them, build a snapshot into ``intel_dir`` (with the indicators imported from peers
    under ``shared_home``, ``intel/sources/shared.py``) and make it current; return what was done.

    Returns ``{"snapshot": id, "path": str, "downloaded": [{name, url, bytes, sha256}],
    "skipped": [{name, url, reason}]}``. Raises ``DownloadError`` when a required source
    cannot be downloaded or verified and ``SourceError`` when the build fails; the previous
    snapshot then stays current.
    """
    table = tuple(packaged_remotes() if remotes is None else remotes)
    run = _Run(
        http=client or default_client(),
        progress=progress or _Silent(),
        day=today or datetime.now(UTC).date(),
        remotes=table,
    )
    try:
        with _exclusive(downloads_dir):
            result = _update(run, SnapshotStore(intel_dir), downloads_dir, shared_home)
            if remotes is None:  # the packaged table: the sanctions lists follow (intel/sanctions_update.py)
                from geowarden.intel.sanctions_update import update_lists  # noqa: PLC0415

                result["sanctions"] = update_lists(intel_dir, downloads_dir, run.http, say=run.progress.step)
            return result
    finally:
        if client is None:
            run.http.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Run:
    """What every step of one update uses."""

    http: httpx.Client
    progress: UpdateProgress
    day: date
    remotes: tuple[Remote, ...]

    def url(self, remote: Remote) -> str:
        """The remote's URL for this month's release."""
        return remote.url.replace("{month}", _month(self.day))


def _update(run: _Run, store: SnapshotStore, downloads: Path, shared_home: Path | None = None) -> dict[str, Any]:
    previous = _last_good(downloads)
    staging = _fresh_dir(downloads)
    say = run.progress.step
    try:
        say(f"downloading {len(run.remotes)} public sources into {staging}")
        downloaded, skipped = _fetch_all(run, staging, previous)
        say("reading the downloaded sources")
        sources = discover(staging)
        if not sources:
            raise SourceError(f"no recognised source in {staging}")
        peers = shared.load_all(shared_home) if shared_home is not None else []
        sources = [*sources, *(src for src, _ in peers)]  # a peer's indicators survive an update like a build
        note = f"update {staging.name}{shared.note_of(peers)}"
        try:
            snap = store.build_and_activate(sources, note=note, progress=say)
        except SnapshotError as exc:
            name = exc.context.get("snapshot", "")
            raise SourceError(f"the new snapshot {name} does not load: {exc.message}") from None
        say(f"snapshot {snap.name} is now current")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _write_last(downloads, staging)
    _prune_downloads(downloads, keep=staging)
    return {"snapshot": snap.name, "path": str(snap), "downloaded": downloaded, "skipped": skipped}


# -- downloading -----------------------------------------------------------------------------


def _fetch_all(run: _Run, staging: Path, previous: Path | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    downloaded: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    try:
        for remote in run.remotes:
            try:
                downloaded.append(_fetch_one(run, remote, staging, previous))
            except DownloadError as exc:
                if remote.required:
                    raise
                reason = exc.message.removeprefix(f"{remote.name}: ")
                skipped.append({"name": remote.name, "url": run.url(remote), "reason": reason})
                run.progress.skipped(remote.name, reason)
    finally:
        run.progress.downloads_done()
    return downloaded, skipped


def _fetch_one(run: _Run, remote: Remote, staging: Path, previous: Path | None) -> dict[str, Any]:
    dest = staging / remote.dest.replace("{date}", run.day.isoformat())
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"{remote.name}: cannot create {dest.parent}: {one_line(exc)}") from None
    try:
        url, sha256, md5, size = _fetch_release(run, remote, part)
        if remote.md5:
            _check_md5(run.http, remote.name, url + ".md5", md5)
        entries = count_entries(remote, part)
        if previous is not None:
            check_shrink(remote, entries, previous_file(remote, previous))
        part.replace(dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return {"name": remote.name, "url": url, "bytes": size, "sha256": sha256}


def _fetch_release(run: _Run, remote: Remote, part: Path) -> tuple[str, str, str, int]:
    """Download ``remote``, trying last month's release when this month's is not out yet."""
    if "{month}" not in remote.url:
        return remote.url, *_stream(run, remote, remote.url, part)
    months = [_month(run.day), _month(_previous_month(run.day))]
    for i, month in enumerate(months):
        url = remote.url.replace("{month}", month)
        try:
            return url, *_stream(run, remote, url, part)
        except _NotFoundError:
            if i == len(months) - 1:
                raise DownloadError(f"{remote.name}: no release for {' or '.join(months)} (HTTP 404)") from None
    raise AssertionError("unreachable")  # pragma: no cover


def _stream(run: _Run, remote: Remote, url: str, part: Path) -> tuple[str, str, int]:
    """Stream ``url`` into ``part`` (decompressed if gzip); return sha256, md5 and size stored."""
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)  # only to compare with the published checksum
    size = 0
    gunzip = _Gunzip() if remote.gzip else None
    try:
        with run.http.stream("GET", url) as resp:
            if resp.status_code == 404:
                raise _NotFoundError(f"{remote.name}: {url}: HTTP 404")
            if resp.status_code != 200:
                raise DownloadError(f"{remote.name}: {url}: HTTP {resp.status_code}")
            length = resp.headers.get("content-length", "")
            advance = run.progress.download(remote.name, int(length) if length.isdigit() else None)
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
                    advance(received)
                if gunzip:
                    tail = gunzip.finish()
                    size += len(tail)
                    sha256.update(tail)
                    md5.update(tail)
                    fh.write(tail)
            if length.isdigit() and received < int(length):
                raise DownloadError(f"{remote.name}: truncated download ({received:,} of {int(length):,} bytes)")
    except httpx.HTTPError as exc:
        raise DownloadError(f"{remote.name}: {url}: {type(exc).__name__}: {one_line(exc)}") from None
    except zlib.error as exc:
        raise DownloadError(f"{remote.name}: corrupt gzip data from {url}: {one_line(exc)}") from None
    except OSError as exc:
        raise DownloadError(f"{remote.name}: cannot write {part}: {one_line(exc)}") from None
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
        raise DownloadError(f"{name}: checksum {url}: {type(exc).__name__}: {one_line(exc)}") from None
    if resp.status_code != 200:
        raise DownloadError(f"{name}: checksum {url}: HTTP {resp.status_code}")
    found = _MD5_RE.search(resp.text)
    if found is None:
        raise DownloadError(f"{name}: no MD5 checksum in {url}")
    if found.group(0).lower() != actual:
        raise DownloadError(f"{name}: MD5 mismatch (published {found.group(0).lower()}, got {actual})")


# -- building and bookkeeping ----------------------------------------------------------------


@contextlib.contextmanager
def _exclusive(downloads: Path) -> Iterator[None]:
    try:
        downloads.mkdir(parents=True, exist_ok=True)
        fh = (downloads / ".lock").open("a")
    except OSError as exc:
        raise DownloadError(f"cannot use {downloads}: {one_line(exc)}") from None
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
            raise DownloadError(f"cannot create {path}: {one_line(exc)}") from None
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
