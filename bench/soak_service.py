"""A bounded soak of the decision service: mixed decisions while Redis and PostgreSQL restart.

Starts a private ``redis-server`` and a private PostgreSQL (``initdb`` + ``pg_ctl`` in a scratch
directory, run as the ``postgres`` user when started as root), then ``geowarden serve --workers 2``
with ``GEOWARDEN_STATE_URL`` on that Redis and ``GEOWARDEN_AUDIT_URL`` on that PostgreSQL. Client
threads send a mix of ``/v1/decide``, ``/v1/signup`` and ``/auth_request`` for ``--seconds``
(300 by default); a third of the way in Redis is killed and started again, two thirds in
PostgreSQL is restarted (``pg_ctl restart -m fast``). The shared servers of the machine are never
touched. At the end every acknowledged decision (a 200 with a ``decision_id``, or an edge answer
with ``x-geowarden-decision``) is looked up in the audit database; every answer that is not a
decision is counted by status and message. It stops by itself.

Usage::

    python bench/soak_service.py --snapshot DIR [--seconds 300] [--threads 6] [--json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

IPS = ["8.8.8.8", "1.2.4.8", "81.2.69.160", "3.4.12.4", "185.220.101.1", "5.8.8.8", "2400:3200::1", "9.9.9.9"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def as_postgres(cmd: list[str]) -> list[str]:
    """Run a PostgreSQL tool as the postgres user when we are root (initdb refuses root)."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on its own port."""

    def __init__(self, root: Path, port: int) -> None:
        self.data = root / "pgdata"
        self.port = port
        self.root = root

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            as_postgres(["initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres"]),
            check=True, capture_output=True,
        )  # fmt: skip
        self._ctl("start")

    def _ctl(self, what: str) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        log = str(self.root / "pg.log")
        subprocess.run(
            as_postgres(["pg_ctl", "-D", str(self.data), "-o", opts, "-l", log, "-w", "-m", "fast", what]),
            check=True, capture_output=True,
        )  # fmt: skip

    def restart(self) -> None:
        self._ctl("restart")

    def stop(self) -> None:
        cmd = as_postgres(["pg_ctl", "-D", str(self.data), "-m", "immediate", "stop"])
        subprocess.run(cmd, capture_output=True, check=False)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


class PrivateRedis:
    """A throwaway redis-server (no persistence), killed with -9 and started again for the soak."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port, self.workdir = port, workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(0.3)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


class Tally:
    """What the clients saw."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acknowledged: list[str] = []
        self.answers: collections.Counter[str] = collections.Counter()
        self.problems: collections.Counter[str] = collections.Counter()
        self.unavailable: collections.Counter[str] = collections.Counter()

    def note(self, what: str, r: httpx.Response | None, err: str | None = None) -> None:
        with self.lock:
            if r is None:
                self.problems[f"{what}: transport error {err}"] += 1
                return
            did = r.headers.get("x-geowarden-decision")
            if r.status_code == 200 and what != "auth_request":
                doc = r.json()
                did = doc["decision_id"]
                for e in doc.get("evidence", []):
                    if e["code"] == "SIGNAL_UNAVAILABLE":
                        self.unavailable[f"{e['value']} -> {doc['action']}"] += 1
            if did and r.status_code in (200, 403):
                self.acknowledged.append(did)
                self.answers[f"{what} {r.status_code}"] += 1
            else:
                detail = r.text[:120] if r.status_code >= 500 else ""
                self.problems[f"{what} {r.status_code} {detail}".strip()] += 1


def client(url: str, token: str, stop: float, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=10, headers={"authorization": f"Bearer {token}"}) as c:
        while time.monotonic() < stop:
            ip = rng.choice(IPS)
            acct = f"acct-{rng.randint(0, 300)}"
            kind = rng.choices(["decide", "signup", "auth_request"], weights=[7, 1, 2])[0]
            try:
                if kind == "decide":
                    r = c.post("/v1/decide", json={"ip": ip, "account_id": acct, "api_key_id": f"key-{acct}"})
                elif kind == "signup":
                    r = c.post("/v1/signup", json={"ip": ip, "account_id": acct, "phone": "+4915123456789"})
                else:
                    h = {"x-geowarden-token": token, "x-geowarden-account": acct, "x-forwarded-for": ip}
                    r = c.get("/auth_request", headers=h)
            except httpx.HTTPError as exc:
                tally.note(kind, None, type(exc).__name__)
                time.sleep(0.05)
                continue
            tally.note(kind, r)


def main() -> int:  # noqa: PLR0915 - one scenario, read top to bottom
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snapshot", type=Path, required=True)
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--threads", type=int, default=6)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for tool in ("redis-server", "initdb", "pg_ctl"):
        if shutil.which(tool) is None:
            sys.exit(f"soak_service: needs {tool}")
    scratch = Path(tempfile.mkdtemp(prefix="gw-soak-"))
    scratch.chmod(0o755)
    redis = PrivateRedis(free_port(), scratch)
    pg = PrivatePostgres(scratch / "pg", free_port())
    redis.start()
    pg.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")}
    env |= {
        "GEOWARDEN_HOME": str(scratch / "home"),
        "GEOWARDEN_SNAPSHOT": str(args.snapshot),
        "GEOWARDEN_STATE_URL": f"redis://127.0.0.1:{redis.port}/0",
        "GEOWARDEN_AUDIT_URL": pg.url,
        "GEOWARDEN_LOG_LEVEL": "WARNING",
        "GEOWARDEN_TRUSTED_PROXIES": "127.0.0.1/32",
    }
    exe = [sys.executable, "-m", "geowarden"]
    token = json.loads(
        subprocess.run([*exe, "token", "create", "--scope", "decide", "--json"], env=env, capture_output=True,
                       text=True, check=True).stdout
    )["token"]  # fmt: skip
    port = free_port()
    log = (scratch / "serve.log").open("wb")
    server = subprocess.Popen([*exe, "serve", "--port", str(port), "--workers", "2", "-q"], env=env, stderr=log)
    url = f"http://127.0.0.1:{port}"
    events: list[tuple[float, str]] = []
    tally = Tally()
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code in (200, 503):
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        t0 = time.monotonic()
        stop = t0 + args.seconds
        threads = [threading.Thread(target=client, args=(url, token, stop, tally, i)) for i in range(args.threads)]
        for t in threads:
            t.start()
        time.sleep(args.seconds / 3)
        events.append((time.monotonic() - t0, "redis kill -9"))
        redis.kill()
        time.sleep(5)
        redis.start()
        events.append((time.monotonic() - t0, "redis started"))
        time.sleep(max(0.0, t0 + 2 * args.seconds / 3 - time.monotonic()))
        events.append((time.monotonic() - t0, "postgresql restart -m fast"))
        pg.restart()
        events.append((time.monotonic() - t0, "postgresql up"))
        for t in threads:
            t.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    engine = sa.create_engine(pg.url)
    with engine.connect() as conn:
        stored = set(conn.execute(sa.text("SELECT decision_id FROM decisions")).scalars())
    engine.dispose()
    lost = [d for d in tally.acknowledged if d not in stored]
    redis.kill()
    pg.stop()
    doc: dict[str, Any] = {
        "seconds": args.seconds,
        "threads": args.threads,
        "acknowledged": len(tally.acknowledged),
        "stored": len(stored),
        "lost": len(lost),
        "answers": dict(tally.answers),
        "not_decided": dict(tally.problems),
        "signals_unavailable": dict(tally.unavailable),
        "events": [[round(t, 1), e] for t, e in events],
    }
    if args.json:
        print(json.dumps(doc))
    else:
        print(
            f"== soak_service: {args.seconds} s, {args.threads} clients, 2 workers, Redis and PostgreSQL restarted =="
        )
        for when, e in events:
            print(f"  t={when:6.1f} s  {e}")
        print(
            f"acknowledged decisions: {len(tally.acknowledged):,}; in the audit log: {len(stored):,}; lost: {len(lost)}"
        )
        print("answers:", json.dumps(dict(tally.answers)))
        print("not decided (status and message):")
        for k, n in tally.problems.most_common():
            print(f"  {n:>6}  {k}")
        print("signals that could not answer (signal -> action):", json.dumps(dict(tally.unavailable)))
    shutil.rmtree(scratch, ignore_errors=True)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
