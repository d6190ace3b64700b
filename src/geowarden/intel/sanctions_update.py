"""``geowarden intel update`` for the sanctions lists: download, verify, install, switch.

The public originals are listed in ``sanctions.yaml`` (beside this module, in the form of
``downloads.yaml``): OFAC SDN and its alias and address tables, OFAC's consolidated (non-SDN)
list, the UN Security Council consolidated list, the BIS Denied Persons List and trade.gov's
Consolidated Screening List. One run:

1. streams every file into a fresh staging directory ``downloads/sanctions-<UTC stamp>/`` (the
   layout of ``shared/data``), refusing anything over ``update.MAX_BYTES``;
2. verifies each by parsing it as screening reads it (``verify.count_entries``, check
   ``sanctions``) and refuses a list with less than half the parties of the installed copy
   (``verify.check_shrink``, the same guard as the IP sources);
3. a list that fails is reported with its reason and its installed copy is carried over, so no
   list disappears because its download failed; without the required SDN list (downloaded or
   installed) nothing is switched;
4. installs the staging directory with :func:`.sanctions.install`: parsed once more as a whole,
   copied into a new version, ``current`` switched in one rename. Any failure leaves the lists
   in use untouched, and the staging directory is removed in every case.

It never raises for a list that cannot be had: the IP update it follows has already succeeded.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

from geowarden.errors import DownloadError, SourceError
from geowarden.intel import sanctions
from geowarden.intel.remotes import Remote, parse_remotes
from geowarden.intel.verify import check_shrink, count_entries, one_line

PACKAGED = "sanctions.yaml"
MAX_BYTES = 1 << 30
_PREFIX = sanctions.SANCTIONS + "/"


def packaged_lists() -> tuple[Remote, ...]:
    """The sanctions download table that installs with geowarden."""
    text = resources.files("geowarden.intel").joinpath(PACKAGED).read_text(encoding="utf-8")
    return parse_remotes(text, PACKAGED)


def update_lists(
    intel_dir: Path,
    downloads_dir: Path,
    http: httpx.Client,
    *,
    remotes: tuple[Remote, ...] | None = None,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Download, verify and install the sanctions lists; what was done (never raises for a list).

    ``{"installed": bool, "lists": lists.json of the lists now in use or None, "downloaded":
    [{name, url, parties}], "skipped": [{name, url, reason, kept}], "error": str (when nothing
    was switched)}``."""
    table = remotes if remotes is not None else packaged_lists()
    previous = sanctions.current(intel_dir)
    downloads_dir.mkdir(parents=True, exist_ok=True)
    staging = downloads_dir / f"sanctions-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
    downloaded: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    result: dict[str, Any] = {"installed": False, "downloaded": downloaded, "skipped": skipped}
    try:
        for remote in table:
            rel = remote.dest.removeprefix(_PREFIX)
            dest = staging / sanctions.SANCTIONS / rel
            before = previous / rel if previous is not None and (previous / rel).is_file() else None
            try:
                parties = _fetch(http, remote, dest, before)
                downloaded.append({"name": remote.name, "url": remote.url, "parties": parties})
            except DownloadError as exc:
                if before is not None:  # the installed copy stays in use
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(before, dest)
                skipped.append({"name": remote.name, "url": remote.url, "reason": exc.message, "kept": bool(before)})
                if say:
                    say(f"sanctions list {remote.name} skipped: {exc.message}")
                if remote.required and before is None:
                    result["error"] = f"{remote.name}: {exc.message}"
                    return result | {"lists": sanctions.info(intel_dir)}
        if not downloaded:
            result["error"] = "no sanctions list could be downloaded"
            return result | {"lists": sanctions.info(intel_dir)}
        try:
            result["lists"] = sanctions.install(staging / sanctions.SANCTIONS, intel_dir, say=say)
            result["installed"] = True
        except SourceError as exc:
            result["error"] = exc.message
            result["lists"] = sanctions.info(intel_dir)
        return result
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fetch(http: httpx.Client, remote: Remote, dest: Path, before: Path | None) -> int:
    """Stream one list into ``dest``, verify it, compare it with the installed copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    size = 0
    try:
        with http.stream("GET", remote.url) as resp:
            if resp.status_code != 200:
                raise DownloadError(f"{remote.url}: HTTP {resp.status_code}")
            length = resp.headers.get("content-length", "")
            with part.open("wb") as fh:
                for chunk in resp.iter_bytes(1 << 16):
                    size += len(chunk)
                    if size > MAX_BYTES:
                        raise DownloadError(f"larger than {MAX_BYTES >> 20} MiB, refused")
                    fh.write(chunk)
            # Bytes on the wire: httpx counts them only when it decodes a Content-Encoding itself.
            received = resp.num_bytes_downloaded if resp.headers.get("content-encoding") else size
            if length.isdigit() and received < int(length):
                raise DownloadError(f"truncated download ({received:,} of {int(length):,} bytes)")
    except httpx.HTTPError as exc:
        raise DownloadError(f"{remote.url}: {type(exc).__name__}: {one_line(exc)}") from None
    except OSError as exc:
        raise DownloadError(f"cannot write {part}: {one_line(exc)}") from None
    parties = count_entries(remote, part)
    check_shrink(remote, parties, before)
    part.replace(dest)
    return parties
