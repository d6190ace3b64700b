"""Synthetic audit logs for the compliance report's benchmark and tests: decisions spread over a
date range with known shares of countries, actions, evasion techniques and networks.

``fill(url, n, start, end, seed)`` writes ``n`` decisions straight into the ``decisions`` and
``review_events`` tables with the driver's executemany (no chain: the report reads the rows, and
generating millions through the chained writer would measure the writer, not the report).
"""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

from geowarden.audit.store import AuditLog

COUNTRIES = [("CN", 0.25), ("RU", 0.1), ("IR", 0.03), ("US", 0.3), ("DE", 0.12), ("SG", 0.1), ("HK", 0.05),
             ("UA", 0.05)]  # fmt: skip
CODES = {"vpn": "IP_VPN", "proxy": "IP_PROXY", "tor": "IP_TOR", "hosting": "IP_HOSTING", "key": "KEY_MANY_COUNTRIES",
         "tz": "TZ_RESTRICTED"}  # fmt: skip
RESTRICTED = {"CN", "RU", "IR", "HK"}


def fill(db: Path, n: int, start: float, end: float, seed: int = 7) -> dict[str, int]:
    """``n`` decisions in ``[start, end)`` into the SQLite audit database ``db`` (created with the
    current schema first). Returns a few counts to check a report against."""
    AuditLog(f"sqlite:///{db}", key=b"report-bench-key" * 2).close()
    rng = random.Random(seed)
    ccs, weights = zip(*COUNTRIES, strict=True)
    con = sqlite3.connect(db)
    counts = {"decisions": 0, "attempts": 0, "crimea": 0}
    ev_base = json.dumps([{"signal": "ip", "code": "IP_COUNTRY", "value": "CN"}])
    batch, events = [], []
    for i in range(n):
        cc = rng.choices(ccs, weights)[0]
        ts = start + (end - start) * (i + rng.random()) / n  # in time order, as the log is written
        reasons: list[str] = []
        evidence = ev_base
        if cc in RESTRICTED:
            reasons.append("IP_COUNTRY_RESTRICTED")
            action = "block"
        else:
            tech = rng.random()
            if tech < 0.1:
                reasons.append(CODES[rng.choice(list(CODES))])
                action = "challenge"
            elif cc == "UA" and tech < 0.3:
                reasons.append("IP_COUNTRY_RESTRICTED")
                evidence = json.dumps([{"signal": "ip", "code": "IP_COUNTRY_RESTRICTED", "value": "UA-43"}])
                action = "block"
                counts["crimea"] += 1
            else:
                action = "review" if tech > 0.995 else "allow"
        review = "queued" if action == "review" else "none"
        did = f"{seed:04d}{i:028d}"
        if action == "review" and rng.random() < 0.5:
            review = "overturned" if rng.random() < 0.3 else "confirmed"
            events.append((did, ts + 3600, "reviewer", "overturn" if review == "overturned" else "confirm", ""))
        counts["decisions"] += 1
        counts["attempts"] += action != "allow"
        batch.append((did, ts, "request", action, 1.0 if action == "block" else 0.0, "default-abc", 20.0,
                      f"10.{i % 250}.0.1", cc, 4134 if cc == "CN" else 16509 + (i % 40), f"acct-{i % 5000}",
                      f"key-{i % 9000}", json.dumps(reasons), "[]", "{}", evidence, review))  # fmt: skip
        if len(batch) >= 100_000:
            con.executemany("INSERT INTO decisions VALUES (" + ",".join("?" * 17) + ")", batch)
            batch = []
    con.executemany("INSERT INTO decisions VALUES (" + ",".join("?" * 17) + ")", batch)
    con.executemany("INSERT INTO review_events (decision_id, ts, actor, event, note) VALUES (?,?,?,?,?)", events)
    con.commit()
    con.close()
    return counts
