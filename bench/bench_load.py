"""Snapshot load time, resident memory and size on disk, against the maxminddb C reader.

- load: ``Snapshot.open`` + the first lookup in a fresh Python process, median of ``--repeat``
  runs, with the page cache warm and cold (the snapshot's files evicted first with
  ``posix_fadvise(DONTNEED)``); also ``Warden.open`` + the first decision, and the peer's
  ``maxminddb.open_database`` + the first ``get``;
- memory: VmRSS (``/proc/self/status``) of a fresh process before opening the snapshot, after
  opening it, and after touching every page of every array (the worst case: all of the intel
  resident); the peer's file-backed RSS after walking its whole tree;
- disk: the snapshot directory's size, largest files first, beside the MMDB file's.

Run: ``python bench/bench_load.py --snapshot DIR`` (``--help`` for options; ``--json``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import (
    Report,
    base_parser,
    dir_size,
    machine,
    open_reader,
    parse_checked,
    resolve_snapshot,
    verdict,
)

BUDGET_LOAD_S = 1.0
BUDGET_RSS_MB = 200.0
PROBE = "8.8.8.8"

# Children are plain ``python -c`` programs so that nothing but what they time is imported.
CHILD_SNAPSHOT = """
import json, sys, time
t0 = time.perf_counter_ns()
from geowarden.intel.snapshot import Snapshot
t1 = time.perf_counter_ns()
snap = Snapshot.open(sys.argv[1])
t2 = time.perf_counter_ns()
snap.lookup(sys.argv[2])
t3 = time.perf_counter_ns()
print(json.dumps({"import": t1 - t0, "open": t2 - t1, "first": t3 - t2, "total": t3 - t1}))
"""

CHILD_WARDEN = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter_ns()
from geowarden.model import Facts
from geowarden.warden import Warden
t1 = time.perf_counter_ns()
warden = Warden.open(snapshot=Path(sys.argv[1]))
t2 = time.perf_counter_ns()
warden.decide(Facts(ip=sys.argv[2]))
t3 = time.perf_counter_ns()
print(json.dumps({"import": t1 - t0, "open": t2 - t1, "first": t3 - t2, "total": t3 - t1}))
"""

CHILD_PEER = """
import json, sys, time
t0 = time.perf_counter_ns()
import maxminddb
t1 = time.perf_counter_ns()
reader = maxminddb.open_database(sys.argv[1], mode=maxminddb.MODE_AUTO)
t2 = time.perf_counter_ns()
reader.get(sys.argv[2])
t3 = time.perf_counter_ns()
assert reader.__class__.__module__ == "maxminddb.extension", reader.__class__.__module__
print(json.dumps({"import": t1 - t0, "open": t2 - t1, "first": t3 - t2, "total": t3 - t1}))
"""

STATUS = """
def status():
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0])
    return out
"""

CHILD_MEMORY = (
    STATUS
    + """
import json, sys
import numpy as np
from geowarden.intel.snapshot import Snapshot
r0 = status()
snap = Snapshot.open(sys.argv[1])
snap.lookup(sys.argv[2])
r1 = status()
arrays = [snap.v4_starts, snap.v4_rows, snap.v4_index24, snap.v6_starts, snap.v6_rows]
arrays += list(snap.row_columns.values())
mapped = 0
for a in arrays:
    b = np.asarray(a).reshape(-1).view(np.uint8)
    mapped += b.nbytes
    int(b[::4096].sum())  # read one byte of every page
r2 = status()
print(json.dumps({"before": r0, "opened": r1, "touched": r2, "mapped_bytes": mapped}))
"""
)

CHILD_PEER_MEMORY = (
    STATUS
    + """
import json, sys
import maxminddb
r0 = status()
reader = maxminddb.open_database(sys.argv[1], mode=maxminddb.MODE_AUTO)
reader.get(sys.argv[2])
r1 = status()
for _ in reader:  # walks the whole search tree and data section
    pass
r2 = status()
print(json.dumps({"before": r0, "opened": r1, "touched": r2}))
"""
)


def evict(paths: Sequence[Path]) -> None:
    """Drop these files' pages from the page cache (clean pages only: fsync first)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def run_child(code: str, *argv: str) -> tuple[dict[str, Any], float]:
    """Run a child program; its JSON output and the wall time of the whole process in s."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr}")
    return json.loads(proc.stdout), wall


def load_runs(code: str, target: Path, files: Sequence[Path], repeat: int, *, cold: bool) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    walls: list[float] = []
    run_child(code, str(target), PROBE)  # untimed: warm the interpreter's own files
    for _ in range(repeat):
        if cold:
            evict(files)
        out, wall = run_child(code, str(target), PROBE)
        runs.append(out)
        walls.append(wall)

    def med(key: str) -> float:
        return float(statistics.median(int(r[key]) for r in runs)) / 1e9

    return {
        "import_s": med("import"),
        "open_s": med("open"),
        "first_s": med("first"),
        "total_s": med("total"),
        "total_min_s": min(int(r["total"]) for r in runs) / 1e9,
        "process_wall_s": statistics.median(walls),
        "runs": len(runs),
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms"


def mb(kb_or_bytes: float, *, kb: bool = True) -> str:
    return f"{kb_or_bytes / (1024 if kb else 1024 * 1024):,.1f} MB"


def load_section(rep: Report, snap_dir: Path, mmdb: Path, repeat: int) -> None:
    snap_files = sorted(p for p in snap_dir.iterdir() if p.is_file())
    cases = [
        ("geowarden Snapshot.open + lookup", CHILD_SNAPSHOT, snap_dir, snap_files),
        ("geowarden Warden.open + decide", CHILD_WARDEN, snap_dir, snap_files),
        ("maxminddb open_database + get", CHILD_PEER, mmdb, [mmdb]),
    ]
    rows: list[list[Any]] = []
    out: dict[str, Any] = {}
    for cache in ("warm", "cold"):
        for name, code, target, files in cases:
            r = load_runs(code, target, files, repeat, cold=cache == "cold")
            out[f"{name} ({cache})"] = {k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()}
            check = ""
            if name.startswith("geowarden Snapshot"):
                check = f"< 1 s: {verdict(r['total_s'] < BUDGET_LOAD_S)}"
            rows.append(
                [
                    name,
                    cache,
                    ms(r["import_s"]),
                    ms(r["open_s"]),
                    ms(r["first_s"]),
                    ms(r["total_s"]),
                    ms(r["total_min_s"]),
                    ms(r["process_wall_s"]),
                    check,
                ]
            )
    rep.say(
        f"load in a fresh process, median of {repeat} runs; open+first = the load time "
        "(imports shown apart); cold = the files evicted from the page cache before each run"
    )
    rep.table(
        ["what", "cache", "import", "open", "first call", "open+first", "min", "process", "budget"],
        rows,
    )
    snap_t = out["geowarden Snapshot.open + lookup (cold)"]["total_s"]
    peer_t = out["maxminddb open_database + get (cold)"]["total_s"]
    rep.say(f"    cold load: geowarden / maxminddb = {snap_t / peer_t:,.1f}x the peer's time")
    rep.say()
    rep.doc["load"] = out


def memory_section(rep: Report, snap_dir: Path, mmdb: Path) -> None:
    ours, _ = run_child(CHILD_MEMORY, str(snap_dir), PROBE)
    peer, _ = run_child(CHILD_PEER_MEMORY, str(mmdb), PROBE)
    rows: list[list[Any]] = []
    for name, r in (("geowarden snapshot", ours), ("maxminddb reader", peer)):
        b, o, t = r["before"], r["opened"], r["touched"]
        rows.append(
            [
                name,
                mb(b["VmRSS"]),
                mb(o["VmRSS"] - b["VmRSS"]),
                mb(t["VmRSS"] - b["VmRSS"]),
                mb(t["RssAnon"] - b["RssAnon"]),
                mb(t["RssFile"] - b["RssFile"]),
            ]
        )
    delta_mb = (ours["touched"]["VmRSS"] - ours["before"]["VmRSS"]) / 1024
    rep.say(
        "resident memory of a fresh process (VmRSS); 'all touched' = after reading every page of "
        "every snapshot array (peer: after walking every record)"
    )
    rep.table(["what", "RSS before", "+ after open", "+ all touched", "of it anon", "of it file"], rows)
    rep.say(f"    budget < {BUDGET_RSS_MB:.0f} MB: {delta_mb:,.1f} MB -> {verdict(delta_mb < BUDGET_RSS_MB)}")
    rep.say()
    rep.doc["memory"] = {
        "geowarden": ours,
        "maxminddb": peer,
        "geowarden_delta_mb": round(delta_mb, 1),
        "budget": verdict(delta_mb < BUDGET_RSS_MB),
    }


def disk_section(rep: Report, snap_dir: Path, mmdb: Path) -> None:
    files = sorted((p for p in snap_dir.iterdir() if p.is_file()), key=lambda p: -p.stat().st_size)
    total = dir_size(snap_dir)
    rows: list[list[Any]] = [[f.name, mb(f.stat().st_size, kb=False)] for f in files[:6]]
    if len(files) > 6:
        rest = sum(f.stat().st_size for f in files[6:])
        rows.append([f"{len(files) - 6} more files", mb(rest, kb=False)])
    rows.append(["= snapshot total", mb(total, kb=False)])
    rows.append([f"peer: {mmdb.name}", mb(mmdb.stat().st_size, kb=False)])
    rep.say(f"size on disk ({snap_dir})")
    rep.table(["file", "size"], rows)
    rep.doc["disk"] = {
        "snapshot_bytes": total,
        "files": {f.name: f.stat().st_size for f in files},
        "mmdb_bytes": mmdb.stat().st_size,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    args = parse_checked(parser, argv)
    snap_dir = resolve_snapshot(args.snapshot).resolve()
    rep = Report("bench_load: snapshot load time, memory and size", args.json)
    _, impl = open_reader(args.mmdb)
    env = machine()
    meta = json.loads((snap_dir / "meta.json").read_text(encoding="utf-8"))
    rep.doc.update(machine=env, snapshot={"id": meta["id"], "path": str(snap_dir)}, peer=impl)
    rep.say(f"machine  : {env['cpu']} x{env['cpus']} (shared, noisy), load {env['loadavg']}")
    rep.say(f"snapshot : {meta['id']} ({snap_dir}), {len(meta['sources'])} sources")
    rep.say(f"peer     : {args.mmdb} via {impl}")
    rep.say()
    load_section(rep, snap_dir, args.mmdb, args.repeat)
    memory_section(rep, snap_dir, args.mmdb)
    disk_section(rep, snap_dir, args.mmdb)
    rep.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
