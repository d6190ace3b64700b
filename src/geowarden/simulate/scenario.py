"""Scenarios (mixes of personas) and the simulator: generate, assemble, write logs and labels.

A scenario YAML (``scenarios/*.yaml`` in the package, or any file)::

    name: baseline
    events: 20000            # default event count (the CLI's --events overrides it)
    days: 1                  # the timeline length
    model_release: {model: large-3, day: 2.5}  # optional: a new model appears then
    mix:
      - persona: local_residential     # a persona of geowarden.simulate.personas.PERSONAS
        name: local_residential        # the persona name in labels and eval (default: persona)
        accounts: 400                  # subjects (accounts; clients and keys follow the persona)
        share: 0.30                    # share of the events
        params: {users_per_address: 2} # persona parameter overrides
        planted_network: farm-1        # optional: the entry's accounts are one planted network
        campaign: distill-1            # optional: the entry's accounts run this campaign

The timeline is one Poisson process (sorted times from cumulated exponential gaps, O(n)),
reshaped by the personas' time profiles when they have any (``timeline``); each event goes to
an entry by ``share``, and the entry's persona fills the columns. Strings are
dictionary-encoded (indices into small pools) so that 10 M events take seconds.
"""

from __future__ import annotations

import gzip
import json
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from geowarden.errors import ConfigError
from geowarden.events import APP_RTT, CREATED, EXTRA_TEXT, LOG_FIELDS, PAYMENT_ACCOUNTS
from geowarden.intel.snapshot import Snapshot
from geowarden.simulate.accounts import AccountTable, write_accounts
from geowarden.simulate.blocks import Block, Context, generate
from geowarden.simulate.hydra import AGED as HYDRA_AGED
from geowarden.simulate.hydra import NAME as HYDRA
from geowarden.simulate.hydra import hydra_raw
from geowarden.simulate.personas import PERSONAS, Persona
from geowarden.simulate.prompts import Popular, U64Array, arrow_hex, hex_strings, popular, random64
from geowarden.simulate.timeline import BUCKET_MS, T0_MS, assign, city_offsets, entry_profile, has_profile, warp
from geowarden.simulate.world import MODELS, AddressSpace, Geo, city_zones, load_geo

# The columns written: the API log fields (``events.LOG_FIELDS``) and the extras the eval reads.
HEX_COLUMNS = ("prompt_fingerprint",)  # uint64, written as 16 lowercase hex characters
STRING_COLUMNS = (
    *(f.name for f in LOG_FIELDS if f.kind in ("id", "text") and f.name not in ("request_id", *HEX_COLUMNS)),
    *EXTRA_TEXT,
)
NUMBER_COLUMNS = (
    *(f.name for f in LOG_FIELDS if f.kind == "float"),
    APP_RTT,
    *(f.name for f in LOG_FIELDS if f.kind == "int"),
    CREATED,
    PAYMENT_ACCOUNTS,
)
COLUMNS = ("ts", "request_id", *STRING_COLUMNS, *NUMBER_COLUMNS, *HEX_COLUMNS)


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    persona: Persona
    accounts: int
    share: float
    network: str | None = None  # planted network id (labels: ``network``)
    campaign: str | None = None  # campaign id (labels: ``campaign``)


@dataclass(frozen=True, slots=True)
class Release:
    """A model that appears during the timeline (``day`` after its start)."""

    model: str
    day: float


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    events: int
    days: float
    entries: tuple[Entry, ...]
    release: Release | None = None


def scenario_names() -> list[str]:
    root = resources.files("geowarden.simulate").joinpath("scenarios")
    shipped = (p.name.removesuffix(".yaml") for p in root.iterdir() if p.name.endswith(".yaml"))
    return sorted([HYDRA, HYDRA_AGED, *shipped])


def load_scenario(spec: str | Path, seed: int = 0) -> Scenario:
    """A shipped scenario by name (``baseline``), or a YAML file; ``hydra`` is the family whose
    parameters are drawn from ``seed`` (``simulate.hydra``; ``hydra-aged``: its accounts aged)."""
    text: str
    where = str(spec)
    if where in (HYDRA, HYDRA_AGED):
        return parse_scenario(hydra_raw(seed, aged=where == HYDRA_AGED), f"{where} (seed {seed})")
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"{spec}: no such scenario file")
        text = path.read_text(encoding="utf-8")
    else:
        res = resources.files("geowarden.simulate").joinpath("scenarios").joinpath(f"{spec}.yaml")
        if not res.is_file():
            raise ConfigError(f"unknown scenario {spec!r} (shipped: {', '.join(scenario_names())})")
        text = res.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not YAML: {str(exc).splitlines()[0]}") from None
    return parse_scenario(raw, where)


def parse_scenario(raw: Any, where: str = "scenario") -> Scenario:
    if not isinstance(raw, dict) or not isinstance(raw.get("mix"), list) or not raw["mix"]:
        raise ConfigError(f"{where}: a scenario is a mapping with a non-empty 'mix' list")
    entries: list[Entry] = []
    seen: set[str] = set()
    for i, item in enumerate(raw["mix"]):
        if not isinstance(item, dict) or item.get("persona") not in PERSONAS:
            raise ConfigError(f"{where}: mix[{i}]: 'persona' must be one of {', '.join(PERSONAS)}")
        name = str(item.get("name", item["persona"]))
        if name in seen:
            raise ConfigError(f"{where}: mix[{i}]: duplicate name {name!r}")
        seen.add(name)
        params = item.get("params") or {}
        if not isinstance(params, dict):
            raise ConfigError(f"{where}: mix[{i}]: params must be a mapping")
        try:
            accounts, share = int(item.get("accounts", 10)), float(item.get("share", 0.0))
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: mix[{i}]: accounts and share must be numbers") from None
        if accounts < 1 or share <= 0:
            raise ConfigError(f"{where}: mix[{i}]: accounts must be >= 1 and share > 0")
        tags = [item.get(k) for k in ("planted_network", "campaign")]
        if any(t is not None and (not isinstance(t, str) or not t) for t in tags):
            raise ConfigError(f"{where}: mix[{i}]: planted_network and campaign must be non-empty strings")
        persona = PERSONAS[item["persona"]].with_params(params)
        entries.append(Entry(name, persona, accounts, share, tags[0], tags[1]))
    try:
        events, days = int(raw.get("events", 10_000)), float(raw.get("days", 1.0))
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: events and days must be numbers") from None
    if days <= 0:
        raise ConfigError(f"{where}: days must be > 0")
    return Scenario(str(raw.get("name", where)), events, days, tuple(entries), _release(raw, days, where))


def _release(raw: dict[str, Any], days: float, where: str) -> Release | None:
    spec = raw.get("model_release")
    if spec is None:
        return None
    if not isinstance(spec, dict) or not isinstance(spec.get("model"), str) or not spec["model"]:
        raise ConfigError(f"{where}: model_release is a mapping with a model name and a day")
    if spec["model"] in MODELS:
        raise ConfigError(f"{where}: model_release: {spec['model']!r} already exists before the release")
    try:
        day = float(spec.get("day", days / 2))
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: model_release: day must be a number") from None
    if not 0 <= day < days:
        raise ConfigError(f"{where}: model_release: day must be within the timeline (0 to {days:g})")
    return Release(spec["model"], day)


@dataclass(slots=True)
class Truth:
    """What was planted, for tests and evaluation scripts (never written into the logs)."""

    popular: Popular
    templates: dict[str, U64Array]  # campaign id (or entry name) -> templates
    release: tuple[str, int] | None  # (model, epoch ms)


@dataclass(slots=True)
class Generated:
    """The assembled events as dictionary-encoded columns (see ``to_arrow``)."""

    n: int
    ts: npt.NDArray[np.int64]
    request_id_prefix: str
    strings: dict[str, tuple[list[str | None], npt.NDArray[np.int32]]]  # column -> (pool, indices)
    numbers: dict[str, npt.NDArray[Any]]
    labels: list[dict[str, Any]]
    fallbacks: list[str]
    rtt_source: str
    hex64: dict[str, U64Array] = field(default_factory=dict)  # column -> values (hex text)
    accounts: AccountTable = field(default_factory=AccountTable)
    truth: Truth | None = None

    def to_arrow(self) -> Any:
        import pyarrow as pa  # noqa: PLC0415 - optional dependency
        import pyarrow.compute as pc  # noqa: PLC0415

        cols: dict[str, Any] = {"ts": pa.array(self.ts, type=pa.int64())}
        ids = pc.cast(pa.array(np.arange(self.n, dtype=np.int64)), pa.string())
        cols["request_id"] = pc.binary_join_element_wise(self.request_id_prefix, ids, "")
        for name, (pool, idx) in self.strings.items():
            absent = [i for i, v in enumerate(pool) if v is None]
            mask = np.isin(idx, np.array(absent, dtype=np.int32)) if absent else None
            dictionary = pa.array(["" if v is None else v for v in pool], type=pa.string())
            indices = pa.array(idx, type=pa.int32(), mask=mask)
            cols[name] = pa.DictionaryArray.from_arrays(indices, dictionary)
        for name, arr in self.numbers.items():
            cols[name] = pa.array(arr)
        for name, values in self.hex64.items():
            cols[name] = arrow_hex(values)
        return pa.table(cols)

    def jsonl_lines(self, start: int, stop: int) -> list[str]:
        """Rows ``start:stop`` as JSON lines (fragments pre-encoded per pool value)."""
        frags: list[tuple[list[str], list[int]]] = []
        for name, (pool, idx) in self.strings.items():
            enc = ["" if v is None else f',"{name}":{json.dumps(v)}' for v in pool]
            frags.append((enc, idx[start:stop].tolist()))
        nums = [(name, arr[start:stop].tolist()) for name, arr in self.numbers.items()]
        hexes = [(name, hex_strings(arr[start:stop])) for name, arr in self.hex64.items()]
        ts = self.ts[start:stop].tolist()
        prefix = self.request_id_prefix
        out: list[str] = []
        for j in range(stop - start):
            parts = [f'{{"ts":{ts[j]},"request_id":"{prefix}{start + j}"']
            parts.extend(enc[ix[j]] for enc, ix in frags)
            parts.extend(f',"{name}":{vals[j]}' for name, vals in nums)
            parts.extend(f',"{name}":"{vals[j]}"' for name, vals in hexes)
            parts.append("}\n")
            out.append("".join(parts))
        return out


def build(scenario: Scenario, events: int, seed: int, snapshot: Snapshot, pings: Path | None = None) -> Generated:
    if events < 1:
        raise ConfigError("events must be >= 1")
    rng = np.random.default_rng(seed)
    # independent streams for what was added since the first version (the main stream draws as before)
    streams = rng.spawn(len(scenario.entries) + 2)
    time_rng, world_rng = streams[-2], streams[-1]
    geo = load_geo(pings)
    zones = city_zones(geo)
    space = AddressSpace.of(snapshot)
    span_ms = scenario.days * 86_400_000.0
    gaps = rng.exponential(span_ms / events, size=events)
    weights = _profiles(scenario, span_ms, geo, zones, time_rng)
    if weights is None:  # flat: one homogeneous Poisson process, entries by share
        ts = T0_MS + np.cumsum(gaps).astype(np.int64)
        shares = np.array([e.share for e in scenario.entries])
        entry_of = np.searchsorted(np.cumsum(shares / shares.sum()), rng.random(events), side="right")
        entry_of = np.minimum(entry_of, len(scenario.entries) - 1)
    else:
        ms, bucket = warp(np.cumsum(gaps), weights.sum(axis=0), span_ms / weights.shape[1])
        ts = T0_MS + ms
        entry_of = assign(bucket, weights, rng.random(events))
    # a stable counting sort by entry (what argsort(kind="stable") gives, in K linear passes)
    parts = [np.flatnonzero(entry_of == k) for k in range(len(scenario.entries))]
    order = np.concatenate(parts)
    bounds = np.concatenate([[0], np.cumsum([len(x) for x in parts])])
    strings: dict[str, tuple[list[str | None], npt.NDArray[np.int32]]] = {
        c: ([], np.zeros(events, dtype=np.int32)) for c in STRING_COLUMNS
    }
    numbers: dict[str, npt.NDArray[Any]] = {
        "rtt_ms": np.zeros(events), "rtt_app_ms": np.zeros(events),
        "input_tokens": np.zeros(events, dtype=np.int64), "output_tokens": np.zeros(events, dtype=np.int64),
        "status": np.zeros(events, dtype=np.int64), CREATED: np.zeros(events, dtype=np.int64),
        PAYMENT_ACCOUNTS: np.zeros(events, dtype=np.int64),
    }  # fmt: skip
    hex64 = {c: np.zeros(events, dtype=np.uint64) for c in HEX_COLUMNS}
    truth = Truth(popular(world_rng), {}, None)
    models: tuple[str, ...] = MODELS
    release_ms = None
    if scenario.release is not None:
        models = (*MODELS, scenario.release.model)
        release_ms = T0_MS + int(scenario.release.day * 86_400_000)
        truth.release = (scenario.release.model, release_ms)
    table = AccountTable()
    labels: list[dict[str, Any]] = []
    for k, e in enumerate(scenario.entries):
        templates = np.zeros(0, dtype=np.uint64)
        if e.persona.prompts.get("campaign", 0) > 0:
            tag = e.campaign or e.name
            if tag not in truth.templates:
                truth.templates[tag] = random64(world_rng, e.persona.campaign_templates)
            templates = truth.templates[tag]
        ctx = Context(streams[k], T0_MS, T0_MS + int(span_ms), truth.popular, templates, models, release_ms)
        where = order[bounds[k] : bounds[k + 1]]
        block = generate(e.persona, e.accounts, len(where), rng, space, geo, zones, ts=ts[where], ctx=ctx)
        _place(block, where, strings, numbers, hex64)
        table.parts.append(block.facts)
        labels.extend(_labels(e, block.subjects))
    return Generated(
        n=events,
        ts=ts,
        request_id_prefix=f"req_{seed:x}_",
        strings=strings,
        numbers=numbers,
        labels=labels,
        fallbacks=list(space.fallbacks),
        rtt_source=geo.rtt_source,
        hex64=hex64,
        accounts=table,
        truth=truth,
    )


def _labels(e: Entry, subjects: list[str]) -> list[dict[str, Any]]:
    """One label per subject; ``network`` and ``campaign`` only for planted entries."""
    base: dict[str, Any] = {
        "kind": e.persona.label,
        "persona": e.name,
        "should_allow": e.persona.should_allow,
        "observable": e.persona.observable,
    }
    if e.network is not None:
        base["network"] = e.network
    if e.campaign is not None:
        base["campaign"] = e.campaign
    return [{"subject": s, **base} for s in subjects]


def _profiles(
    scenario: Scenario, span_ms: float, geo: Geo, zones: list[str], rng: np.random.Generator
) -> npt.NDArray[np.float64] | None:
    """Entries x one-minute buckets: each entry's share times its time profile; None when
    every persona is flat in time."""
    if not any(has_profile(e.persona) for e in scenario.entries):
        return None
    n_buckets = max(1, int(np.ceil(span_ms / BUCKET_MS)))
    bucket_ms = span_ms / n_buckets
    offsets = city_offsets(zones)
    shares = np.array([e.share for e in scenario.entries])
    rows = [
        entry_profile(e.persona, n_buckets, bucket_ms, geo, offsets, rng)
        if has_profile(e.persona)
        else np.ones(n_buckets)
        for e in scenario.entries
    ]
    out: npt.NDArray[np.float64] = np.array(rows) * (shares / shares.sum())[:, None]
    return out


def _place(
    block: Block,
    where: npt.NDArray[np.int64],
    strings: dict[str, tuple[list[str | None], npt.NDArray[np.int32]]],
    numbers: dict[str, npt.NDArray[Any]],
    hex64: dict[str, U64Array],
) -> None:
    sources: dict[str, list[str | None]] = {
        "account_id": list(block.accounts),
        "api_key_id": list(block.keys),
        "ip": list(block.addresses),
        **block.pools,
    }
    for col in STRING_COLUMNS:
        pool, idx = strings[col]
        offset = len(pool)
        pool.extend(sources[col])
        idx[where] = block.ev[col] + offset
    for col, arr in numbers.items():
        arr[where] = block.ev[col]
    for col, values in hex64.items():
        values[where] = block.ev[col]


def have_pyarrow() -> bool:
    try:
        import pyarrow.parquet  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def write_parquet(gen: Generated, out: Path) -> None:
    import pyarrow.parquet as pq  # noqa: PLC0415

    pq.write_table(gen.to_arrow(), out, compression="snappy", row_group_size=1_000_000)


def write_jsonl(gen: Generated, out: Path, chunk: int = 200_000) -> None:
    gz = out.suffix == ".gz"
    with gzip.open(out, "wt", encoding="utf-8", compresslevel=1) if gz else out.open("w", encoding="utf-8") as fh:
        for start in range(0, gen.n, chunk):
            fh.writelines(gen.jsonl_lines(start, min(gen.n, start + chunk)))


def write_labels(labels: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in labels:
            fh.write(json.dumps(row) + "\n")


def resolve_snapshot(snapshot: Snapshot | Path | None) -> Snapshot:
    if isinstance(snapshot, Snapshot):
        return snapshot
    if snapshot is not None:
        return Snapshot.open(Path(snapshot))
    from geowarden.warden import Warden  # noqa: PLC0415 - opens the current (or default) snapshot

    return Warden.open().intel


def simulate(
    scenario: str | Path,
    events: int,
    seed: int,
    out: Path,
    labels: Path | None,
    *,
    snapshot: Snapshot | Path | None = None,
    pings: Path | None = None,
    accounts: Path | None = None,
) -> dict[str, Any]:
    """Generate a scenario's events into ``out`` (``.parquet`` with pyarrow, else JSON Lines,
    ``.gz`` compressed), the labels (JSON Lines) into ``labels`` and the accounts table (JSON
    Lines, or Parquet by extension) into ``accounts``; a JSON-ready summary."""
    scen = load_scenario(scenario, seed)
    n = int(events) if events else scen.events
    out = Path(out)
    targets = [out] + [Path(x) for x in (labels, accounts) if x is not None]
    for path in targets:
        if path.suffix == ".parquet" and not have_pyarrow():
            raise ConfigError(f"{path}: writing Parquet needs pyarrow (pip install pyarrow); use .jsonl.gz")
        if not path.parent.is_dir():
            raise ConfigError(f"{path.parent}: no such directory")
    snap = resolve_snapshot(snapshot)
    t0 = time.perf_counter()
    gen = build(scen, n, seed, snap, pings)
    t_gen = time.perf_counter() - t0
    if out.suffix == ".parquet":
        write_parquet(gen, out)
        fmt = "parquet"
    else:
        write_jsonl(gen, out)
        fmt = "jsonl.gz" if out.suffix == ".gz" else "jsonl"
    total = time.perf_counter() - t0
    if labels is not None:
        write_labels(gen.labels, Path(labels))
    if accounts is not None:
        write_accounts(gen.accounts, Path(accounts))
    per: dict[str, int] = {}
    for row in gen.labels:
        per[row["persona"]] = per.get(row["persona"], 0) + 1
    return {
        "scenario": scen.name,
        "events": n,
        "seed": seed,
        "out": str(out),
        "format": fmt,
        "labels": str(labels) if labels is not None else None,
        "accounts": str(accounts) if accounts is not None else None,
        "account_rows": len(gen.accounts),
        "model_release": _release_summary(gen),
        "subjects": per,
        "snapshot": snap.id,
        "rtt_source": gen.rtt_source,
        "address_fallbacks": gen.fallbacks,
        "seconds": {"generate": round(t_gen, 3), "total": round(total, 3)},
        "events_per_second": {"generate": round(n / max(t_gen, 1e-9)), "total": round(n / max(total, 1e-9))},
    }


def _release_summary(gen: Generated) -> dict[str, Any] | None:
    if gen.truth is None or gen.truth.release is None:
        return None
    model, at = gen.truth.release
    return {"model": model, "ts": at}
