"""Load the HTTP decision service on loopback and report decisions/s and latency percentiles.

Starts ``geowarden serve`` (default policy, SQLite audit in a temporary GEOWARDEN_HOME) and drives
``POST /v1/decide`` with ``wrk`` (Debian's package) for a bounded time from the same machine, with
a realistic mix of addresses. The server and the load generator share the machine's 2 cores, so
the figure is a floor for a dedicated server. Targets (DESIGN.md): >= 5,000 decisions/s with p99 < 10 ms.

Usage::

    python bench/bench_service.py --snapshot DIR [--workers 2] [--connections 32] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

LUA = r"""
local bodies = {}
local ips = {%s}
for i, ip in ipairs(ips) do
  bodies[i] = '{"ip":"' .. ip .. '","account_id":"acct-' .. (i %% 500) .. '","api_key_id":"key-' .. (i %% 900) .. '"}'
end
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/v1/decide", {["content-type"] = "application/json",
    ["authorization"] = "Bearer %s"}, bodies[(n %% #bodies) + 1])
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sample_ips(n: int) -> list[str]:
    rng = random.Random(7)
    fixed = ["1.2.4.8", "8.8.8.8", "2400:3200::1", "5.8.8.8", "81.2.69.160", "3.4.12.4", "185.220.101.1"]
    out = [f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(n)]
    return fixed + out


def parse_wrk(text: str) -> dict[str, float]:
    def ms(value: str, unit: str) -> float:
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    out: dict[str, float] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
        if m:
            out[f"p{pct}_ms"] = ms(m.group(1), m.group(2))
    m = re.search(r"(\d+) requests in", text)
    if m:
        out["requests"] = float(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = float(m.group(1)) if m else 0.0
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snapshot", type=Path, help="snapshot directory (default: the current one)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=24)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_service: needs wrk (apt-get install wrk)")
    home = Path(tempfile.mkdtemp(prefix="gw-bench-service-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")}
    env["GEOWARDEN_HOME"] = str(home)
    if args.snapshot:
        env["GEOWARDEN_SNAPSHOT"] = str(args.snapshot)
    exe = [sys.executable, "-m", "geowarden"]
    token = json.loads(
        subprocess.run(
            [*exe, "token", "create", "--scope", "decide", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["token"]
    port = free_port()
    server = subprocess.Popen(
        [*exe, "serve", "--port", str(port), "--workers", str(args.workers), "-q"], env=env, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            sys.exit("bench_service: the server did not start")
        ips = sample_ips(2000)
        script = home / "post.lua"
        script.write_text(LUA % (", ".join(f'"{ip}"' for ip in ips), token))
        subprocess.run(
            ["wrk", "-t1", "-c8", "-d2s", "-s", str(script), url], capture_output=True, check=True
        )  # warm-up
        run = subprocess.run(
            ["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "--latency", "-s", str(script), url],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        result = parse_wrk(run.stdout)
        written = httpx.get(url + "/healthz", timeout=5).json()["audit_written"]
    finally:
        server.terminate()
        server.wait(timeout=20)
        if server.stderr:
            server.stderr.close()
    result |= {
        "workers": args.workers,
        "connections": args.connections,
        "seconds": args.seconds,
        "audit_rows_one_worker": written,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print("== bench_service: POST /v1/decide under wrk on loopback (server and wrk share 2 cores) ==")
    print(f"workers {args.workers}, {args.connections} connections, {args.seconds} s, default policy, SQLite audit")
    rps, n, bad = result.get("rps", 0), result.get("requests", 0), result["non_2xx"]
    print(f"throughput : {rps:,.0f} decisions/s  ({n:,.0f} requests, {bad:.0f} non-2xx)")
    print(
        "latency    : "
        + ", ".join(f"{k.removesuffix('_ms')} {v:.2f} ms" for k, v in result.items() if k.endswith("_ms"))
    )
    target_ok = result.get("rps", 0) >= 5000 and result.get("p99_ms", 1e9) < 10
    print(f"target >= 5,000/s with p99 < 10 ms: {'met' if target_ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
