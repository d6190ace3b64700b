"""What the snapshot says about each distinct client address, as one Arrow table.

The loader hands the distinct addresses of the valid rows here once (about one address per ten
events in real logs), looks them up in one vectorised pass (``Snapshot.rows_v4``/``rows_v6``
over ``addr.parse_many``) and joins the answer back to the events inside the backend. The
prefix is the /24 (IPv4) or /48 (IPv6) network, in canonical text (``1.2.4.0/24``,
``2a00:1450:4001::/48``); an IPv4-mapped IPv6 address is its IPv4 address.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from geowarden.intel import addr
from geowarden.intel.snapshot import NO_ROW, Lookups, Snapshot

#: Columns of the table ``lookup_table`` returns, in order.
COLUMNS = ("ip", "ip_ok", "prefix", "country", "asn", "org", "hosting", "vpn", "proxy", "tor", "relay")
LABELS = ("hosting", "vpn", "proxy", "tor", "relay")


def lookup_table(snapshot: Snapshot, ips: list[str]) -> Any:
    """``ips`` (distinct texts, as logged) -> a ``pyarrow.Table`` of ``COLUMNS``: ``ip_ok`` is
    False where the text is not an address (the other columns are then null)."""
    import pyarrow as pa  # noqa: PLC0415 - a dependency of analytics only

    n = len(ips)
    batch = addr.parse_many(ips)
    rows = np.full(n, NO_ROW, dtype=np.uint32)
    if len(batch.v4_pos):
        rows[batch.v4_pos] = snapshot.rows_v4(batch.v4)
    if len(batch.v6_pos):
        rows[batch.v6_pos] = snapshot.rows_v6(batch.v6)
    bad = np.zeros(n, dtype=bool)
    for i, _ in batch.errors:
        bad[i] = True
    ok = ~bad
    found = Lookups(snapshot, rows, batch.errors)
    country = found.country.astype(object)
    country[(country == "") | bad] = None
    asn = found.asn.astype(np.int64)
    org = found.org
    org_mask = bad | np.array([not o for o in org.tolist()], dtype=bool) if n else bad
    cols: dict[str, Any] = {
        "ip": pa.array(ips, type=pa.string()),
        "ip_ok": pa.array(ok),
        "prefix": _prefixes(batch, n),
        "country": pa.array(country, type=pa.string()),
        "asn": pa.array(asn, mask=(asn == 0) | bad, type=pa.int64()),
        "org": pa.array(org, mask=org_mask, type=pa.string()),
    }
    for label in LABELS:
        cols[label] = pa.array(found.flag(label) & ok, mask=bad)
    return pa.table(cols)


def _prefixes(batch: addr.ParsedBatch, n: int) -> Any:
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    out: npt.NDArray[np.object_] = np.full(n, None, dtype=object)
    if len(batch.v4_pos):
        net = batch.v4 >> np.uint32(8)
        parts = [pc.cast(pa.array((net >> np.uint32(s)) & np.uint32(255)), pa.string()) for s in (16, 8, 0)]
        text = pc.binary_join_element_wise(*parts, ".")
        out[batch.v4_pos] = pc.binary_join_element_wise(text, pa.scalar("0/24"), ".").to_numpy(zero_copy_only=False)
    if len(batch.v6_pos):
        raw = np.frombuffer(batch.v6.tobytes(), dtype=">u2").reshape(-1, 8)[:, :3].astype(np.int64)
        out[batch.v6_pos] = [_v6_prefix(g) for g in raw.tolist()]
    return pa.array(out, type=pa.string())


def _v6_prefix(groups: list[int]) -> str:
    """The canonical text of a /48 from its first three 16-bit groups (the rest are zero, so the
    longest run of zero groups is the trailing one)."""
    while groups and groups[-1] == 0:
        groups = groups[:-1]
    return ":".join(f"{g:x}" for g in groups) + "::/48"


def restricted_zones(restricted: frozenset[str]) -> list[str]:
    """IANA zones used only in restricted jurisdictions (``Asia/Shanghai``, ``Europe/Moscow``, ...),
    as the live client signal judges them (``TZ_RESTRICTED``)."""
    from geowarden.signals.client import ZONE_JURISDICTIONS, zones  # noqa: PLC0415

    table = zones()
    out = []
    for name, countries in table.countries.items():
        places = ZONE_JURISDICTIONS.get(name, countries)
        if places and all(c in restricted for c in places):
            out.append(name)
    return sorted(out)


def client_table(pairs: list[tuple[str | None, str | None]], restricted: frozenset[str]) -> Any:
    """Distinct ``(client_tz, accept_language)`` pairs -> ``pyarrow.Table`` of the pair and
    ``client_restricted``: the zone is used only in restricted jurisdictions, or the primary
    language's region is restricted (``zh-CN``, ``ru-RU``, ``fa-IR``), as the live client signal
    reads them (``TZ_RESTRICTED``, ``LANG_RESTRICTED``)."""
    import pyarrow as pa  # noqa: PLC0415

    from geowarden.signals.client import parse_accept_language, zones  # noqa: PLC0415

    table = zones()
    bad_zones = set(restricted_zones(restricted))
    flags = []
    for tz, lang in pairs:
        flag = False
        if tz:
            name = table.resolve(tz.strip())
            flag = name in bad_zones
        if not flag and lang:
            tags = parse_accept_language(lang)
            flag = bool(tags) and tags[0].region in restricted
        flags.append(flag)
    return pa.table(
        {
            "client_tz": pa.array([p[0] for p in pairs], type=pa.string()),
            "accept_language": pa.array([p[1] for p in pairs], type=pa.string()),
            "client_restricted": pa.array(flags, type=pa.bool_()),
        }
    )
