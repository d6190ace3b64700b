"""Read API logs (and an accounts table) into the backend as the enriched ``events`` table.

The work happens in three steps, none of them per row in Python:

1. **Raw** (backend-specific, ``backends.py``): every non-blank line of a JSON Lines file
   (``.jsonl``, ``.json``, ``.ndjson``, optionally ``.gz``) or every row of a Parquet file
   becomes one row of a uniform *raw* table: ``src`` (which file), ``line`` (1-based line, or
   row for Parquet), ``bad`` (``not JSON`` / ``not a JSON object``), and per known field ``f``
   its text ``f``, its number ``f__n`` (numeric fields) and its JSON type ``f__t``
   (``string``, ``number``, ``bool``, ``object``, ``array``; null when absent or null).
   Lines are split on ``\\n``, ``\\r\\n`` and a lone ``\\r`` (as Python's text mode and
   Hadoop's line reader do); bytes that are not UTF-8 are replaced, not fatal.
2. **Validate** (``validate``, Ibis, identical on every backend): the first problem of each
   row, in this order, or null — ``not JSON``, ``not a JSON object``, ``missing ts, ip`` (absent,
   null or blank required fields), ``ts is not a time``, ``ts is neither ISO 8601 nor epoch
   milliseconds``, ``ts is out of range (2000-2099 expected)``, ``<field> is not a string``,
   ``<field> is not a number``; then typed columns. ``ts`` is epoch milliseconds (a number) or
   ISO 8601 text (``2026-01-02``, ``2026-01-02T03:04[:05[.678]]`` with ``T``, ``t`` or a space,
   then ``Z``, ``+HH``, ``+HHMM`` or ``+HH:MM``; no offset means UTC), parsed by the same
   integer arithmetic on every backend. Identifiers may be strings or numbers (kept as text,
   trimmed); numeric fields may be numbers or numeric strings (integers truncate toward zero).
3. **Enrich** (``enrich.py``): the distinct addresses of the valid rows are looked up once in
   the snapshot; a row whose ``ip`` is not an address is a problem (``ip is not an IP
   address``); the others get ``prefix``, ``country``, ``asn``, ``org`` and the labels.

Every malformed row is counted and reported (file, line, reason); none goes silently missing.
Unknown columns are ignored. Blank lines are not rows. The fields (``LOG_FIELDS``), the problem
type and these rules are ``geowarden.events``'s: its ``EventReader`` applies them row by row in
Python and accepts the same rows with the same problems.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from geowarden.analytics.checks import account_checks, check_problems, event_checks
from geowarden.analytics.engine import Engine, SourceFile
from geowarden.errors import ConfigError
from geowarden.events import EXACT, ISO_PATTERN, LOG_FIELDS, MAX_PROBLEMS, TS_MAX_MS, TS_MIN_MS, Field, Problem

if TYPE_CHECKING:
    from geowarden.intel.snapshot import Snapshot


ACCOUNT_FIELDS: tuple[Field, ...] = (
    Field("account_id", "id", True),
    Field("created", "ts"),
    *(
        Field(n, "text")
        for n in ("payment_fingerprint", "phone_hash", "email_domain", "organisation", "declared_country")
    ),
)

LOG_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz", ".parquet")
ACCOUNT_SUFFIXES = (*LOG_SUFFIXES, ".csv", ".csv.gz")

#: Columns of ``events``, in order (see ``findings.py``).
EVENT_COLUMNS = (
    "ts", "ts_ms", "request_id", "account_id", "api_key_id", "ip", "prefix", "country", "asn", "org",
    "hosting", "vpn", "proxy", "tor", "relay", "user_agent", "accept_language", "client_tz", "client_restricted",
    "pop", "model",
    "prompt_fingerprint", "rtt_ms", "input_tokens", "output_tokens", "status",
)  # fmt: skip


@dataclass(slots=True)
class Problems:
    """Malformed rows: all of them counted (by reason, by file), the first ``MAX_PROBLEMS`` in
    file and line order listed."""

    rows_read: int = 0
    skipped: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    by_file: dict[str, int] = field(default_factory=dict)
    listed: list[Problem] = field(default_factory=list)
    #: Valid rows that fail a check across rows (``checks.py``): kept, and reported.
    checks: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "skipped": self.skipped,
            "by_reason": self.by_reason,
            "by_file": self.by_file,
            "rows": [p.to_dict() for p in self.listed],
            "truncated": self.skipped > len(self.listed),
            "checks": self.checks,
        }


@dataclass(slots=True)
class Loaded:
    events: Any  # ibis.Table
    accounts: Any | None  # ibis.Table | None
    problems: Problems
    account_problems: Problems | None
    seconds: dict[str, float]
    distinct_ips: int
    files: int


# -- files ---------------------------------------------------------------------------------


def discover(paths: Sequence[Path], suffixes: tuple[str, ...] = LOG_SUFFIXES) -> list[SourceFile]:
    """The files to read: each file given (Parquet by suffix, CSV by suffix where allowed,
    anything else JSON Lines), and under each directory every file with a known suffix, sorted."""
    out: list[SourceFile] = []
    if not paths:
        raise ConfigError("no log files given")
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(f for f in path.rglob("*") if f.is_file() and _has_suffix(f, suffixes))
            if not found:
                raise ConfigError(f"{path}: no log files ({', '.join(suffixes)}) in this directory")
            out.extend(SourceFile(f, _format(f, suffixes)) for f in found)
        elif path.is_file():
            out.append(SourceFile(path, _format(path, suffixes)))
        else:
            raise ConfigError(f"{path}: no such file or directory")
    return out


def _has_suffix(path: Path, suffixes: tuple[str, ...]) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in suffixes)


def _format(path: Path, suffixes: tuple[str, ...]) -> Literal["jsonl", "parquet", "csv"]:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if ".csv" in suffixes and name.endswith((".csv", ".csv.gz")):
        return "csv"
    return "jsonl"


# -- validation (portable Ibis) --------------------------------------------------------------


def validate(raw: Any, fields: tuple[Field, ...], tags: dict[str, str | None] | None = None) -> Any:
    """Raw rows -> ``src``, ``line``, ``problem`` (null when the row is good) and one typed column
    per field (``ts`` fields become ``<name>_ms``, int64 epoch milliseconds).

    Built in stages (each a projection over the previous one) so that no sub-expression is
    repeated in the generated SQL: a time is parsed once, whatever uses its parts. A field is
    absent when its text and number are both null; its tag says what the value was.

    ``tags``: the fields whose tag is the same on every row (typed sources: the column's type),
    given as constants so that the backend folds the type checks away."""
    import ibis  # noqa: PLC0415

    static = tags or {}

    def tag_of(t: Any, name: str) -> Any:
        if name in static:  # an absent column's values are all null: its tag never matches
            return ibis.literal(static[name] or "absent", type="string")
        return t[f"{name}__t"]

    t = raw
    for f in fields:
        if f.kind == "ts":
            t = _parse_time(t, f.name, tag_of(t, f.name))
    values: dict[str, Any] = {}
    for f in fields:
        tag, v = tag_of(t, f.name), t[f.name]
        if f.kind == "id":
            values[f"_{f.name}_v"] = ibis.ifelse(tag.isin(("string", "number")), clean_id(v), ibis.null("string"))
        elif f.kind == "text":
            values[f"_{f.name}_v"] = ibis.ifelse(tag.isin(("string", "number")), v, ibis.null("string"))
        elif f.kind != "ts":
            parsed = v.strip().try_cast("float64")
            values[f"_{f.name}_v"] = ibis.cases((tag == "number", t[f"{f.name}__n"]), (tag == "string", parsed))
    t = t.mutate(**values)
    flags: dict[str, Any] = {}
    required = [f.name for f in fields if f.required]
    for f in fields:
        tag, text = tag_of(t, f.name), t[f.name]
        absent = text.isnull() & t[f"{f.name}__n"].isnull() if f.numeric else text.isnull()
        if f.required:
            flags[f"_{f.name}_miss"] = absent | ((tag == "string") & (text == ""))
        if f.kind in ("float", "int"):
            v = t[f"_{f.name}_v"]
            finite = v.notnull() & ~v.isnan() & ~v.isinf() & (v.abs() < EXACT)
            blank = (tag == "string") & (text.strip() == "")
            flags[f"_{f.name}_bad"] = ~absent & ~blank & ~finite.fill_null(False)
    t = t.mutate(**flags)
    any_missing = ibis.literal(False)
    message = ibis.literal("")
    for name in required:
        any_missing = any_missing | t[f"_{name}_miss"]
        message = message + ibis.ifelse(t[f"_{name}_miss"], f"{name}, ", "")
    problems: list[tuple[Any, Any]] = [
        (t["bad"].notnull(), t["bad"]),
        (any_missing, ibis.literal("missing ") + message.re_replace(", $", "")),
    ]
    out: dict[str, Any] = {}
    for f in fields:
        tag = tag_of(t, f.name)
        if f.kind == "ts":
            problems.append((t[f"_{f.name}_why"].notnull(), t[f"_{f.name}_why"]))
            out[f"{f.name}_ms"] = t[f"_{f.name}_ms"]
        elif f.kind in ("id", "text"):
            problems.append((tag.isin(("bool", "object", "array")), ibis.literal(f"{f.name} is not a string")))
            out[f.name] = t[f"_{f.name}_v"]
        else:
            problems.append((t[f"_{f.name}_bad"], ibis.literal(f"{f.name} is not a number")))
            v = ibis.ifelse(t[f"_{f.name}_bad"], ibis.null("float64"), t[f"_{f.name}_v"])
            out[f.name] = _truncate(v) if f.kind == "int" else v
    problem = ibis.cases(*problems, else_=ibis.null("string"))
    return t.select(src=t["src"], line=t["line"], problem=problem, **out)


def clean_id(v: Any) -> Any:
    """An identifier without surrounding blanks (trimming only where needed: it is costly)."""
    import ibis  # noqa: PLC0415

    return ibis.ifelse(v.startswith(" ") | v.endswith(" "), v.strip(), v)


def _truncate(value: Any) -> Any:
    """Toward zero, as ``int()`` does (a plain cast rounds on some backends and truncates on others)."""
    import ibis  # noqa: PLC0415

    return ibis.ifelse(value >= 0, value.floor(), value.ceil()).cast("int64")


def _parse_time(t: Any, name: str, tag: Any) -> Any:
    """Add ``_<name>_ms`` (epoch milliseconds or null) and ``_<name>_why`` (problem or null) for a
    time field: epoch milliseconds, or ISO 8601 text parsed with integer arithmetic."""
    import ibis  # noqa: PLC0415

    number = t[f"{name}__n"]
    c = f"_{name}_"  # prefix of the helper columns
    s = ibis.ifelse(tag == "string", t[name].strip(), ibis.null("string"))
    absent = t[name].isnull() & number.isnull()
    t = t.mutate(**{c + "s": s})
    s = t[c + "s"]
    t = t.mutate(
        **{
            c + "iso": s.re_search(ISO_PATTERN).fill_null(False),
            c + "frac": s.re_extract(ISO_PATTERN, 7),
            c + "tz": s.re_extract(ISO_PATTERN, 8).replace(":", ""),
        }
    )
    s, tz = t[c + "s"], t[c + "tz"]

    def num(piece: Any) -> Any:
        return ibis.ifelse(piece.length() > 0, piece.try_cast("int64"), 0)

    longer = s.length()
    t = t.mutate(
        **{
            c + "y": num(s.substr(0, 4)),
            c + "mo": num(s.substr(5, 2)),
            c + "d": num(s.substr(8, 2)),
            c + "hh": ibis.ifelse(longer >= 13, num(s.substr(11, 2)), 0),
            c + "mi": ibis.ifelse(s.substr(13, 1) == ":", num(s.substr(14, 2)), 0),
            c + "ss": ibis.ifelse(s.substr(16, 1) == ":", num(s.substr(17, 2)), 0),
            c + "fms": num(t[c + "frac"].rpad(3, "0").substr(0, 3)),
            c + "tzh": ibis.ifelse(tz.length() >= 3, num(tz.substr(1, 2)), 0),
            c + "tzm": ibis.ifelse(tz.length() >= 5, num(tz.substr(3, 2)), 0),
            c + "tzs": ibis.ifelse(tz.startswith("-"), -1, 1),
        }
    )
    y, mo, d = t[c + "y"], t[c + "mo"], t[c + "d"]
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    dim = ibis.cases((mo == 2, ibis.ifelse(leap, 29, 28)), (mo.isin((4, 6, 9, 11)), 30), else_=31)
    parts_ok = (
        (mo >= 1) & (mo <= 12) & (d >= 1) & (d <= dim) & (t[c + "hh"] < 24) & (t[c + "mi"] < 60)
        & (t[c + "ss"] < 60) & (t[c + "tzh"] < 24) & (t[c + "tzm"] < 60)
    )  # fmt: skip
    t = t.mutate(**{c + "ok": t[c + "iso"] & parts_ok.fill_null(False), c + "y2": y - ibis.ifelse(mo <= 2, 1, 0)})
    y2 = t[c + "y2"]
    t = t.mutate(**{c + "era": y2 // 400, c + "mp": mo + ibis.ifelse(mo > 2, -3, 9)})
    t = t.mutate(**{c + "yoe": y2 - t[c + "era"] * 400})
    yoe = t[c + "yoe"]
    doe = yoe * 365 + yoe // 4 - yoe // 100 + (153 * t[c + "mp"] + 2) // 5 + d - 1
    days = t[c + "era"] * 146_097 + doe - 719_468  # H. Hinnant's days_from_civil
    iso_ms = (
        days * 86_400_000 + t[c + "hh"] * 3_600_000 + t[c + "mi"] * 60_000 + t[c + "ss"] * 1000 + t[c + "fms"]
        - t[c + "tzs"] * (t[c + "tzh"] * 60 + t[c + "tzm"]) * 60_000
    )  # fmt: skip
    ms = ibis.cases(
        ((tag == "number") & number.notnull() & (number.abs() < EXACT), number.floor().cast("int64")),
        ((tag == "string") & t[c + "ok"], iso_ms),
        else_=ibis.null("int64"),
    )
    t = t.mutate(**{c + "ms": ms})
    ms = t[c + "ms"]
    why = ibis.cases(
        (absent | ((tag == "string") & (t[name] == "")), ibis.null("string")),  # missing, if required
        (tag.isin(("bool", "object", "array")), ibis.literal(f"{name} is not a time")),
        (ms.isnull(), ibis.literal(f"{name} is neither ISO 8601 nor epoch milliseconds")),
        ((ms < TS_MIN_MS) | (ms >= TS_MAX_MS), ibis.literal(f"{name} is out of range (2000-2099 expected)")),
        else_=ibis.null("string"),
    )
    return t.mutate(**{c + "why": why})


# -- the whole load --------------------------------------------------------------------------


def load(
    engine: Engine,
    paths: Sequence[Path],
    snapshot: Snapshot,
    restricted: frozenset[str],
    *,
    accounts: Path | None = None,
    progress: Callable[[str], None] | None = None,
    max_problems: int = MAX_PROBLEMS,
    now_ms: int | None = None,
) -> Loaded:
    """Read, validate and enrich the logs (and the accounts table) into ``engine``: the
    ``events`` view (``EVENT_COLUMNS``) over the materialised ``parsed_events`` table, and
    ``accounts`` (``account_id``, ``created``, ``created_ms``, the text columns). Valid rows that
    fail a check across rows (``checks.py``; ``now_ms``: the time of the run, default now) are
    kept and listed in ``Problems.checks``."""
    import ibis  # noqa: PLC0415

    from geowarden.analytics.enrich import client_table, lookup_table  # noqa: PLC0415

    say = progress or (lambda _msg: None)
    seconds: dict[str, float] = {}
    files = discover(paths)
    t0 = time.perf_counter()
    say(f"reading {len(files)} log file{'s' if len(files) != 1 else ''}")
    raw, tags = engine.raw_table(files, LOG_FIELDS, "raw_events")
    seconds["read"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    say("looking up client addresses")
    ip_text = raw.select(ip=clean_id(raw.ip)).distinct()
    ips = [ip for ip in engine.to_arrow(ip_text).column("ip").to_pylist() if ip]
    info = engine.from_arrow("ip_info", lookup_table(snapshot, ips))
    pairs = engine.to_arrow(raw.select("client_tz", "accept_language").distinct()).to_pylist()
    keyed = client_table([(p["client_tz"], p["accept_language"]) for p in pairs], restricted)
    clients = engine.from_arrow("client_info", keyed)
    seconds["lookup"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    say("validating and enriching events")
    v = validate(raw, LOG_FIELDS, tags)
    v = v.mutate(_tz=v.client_tz.fill_null(""), _lang=v.accept_language.fill_null(""))
    c = clients.select(
        _tz=clients.client_tz.fill_null(""), _lang=clients.accept_language.fill_null(""), cr=clients.client_restricted
    )
    # An absent and an empty header are one key after fill_null: one row per key, or the join would
    # repeat the events that carry it.
    c = c.group_by(["_tz", "_lang"]).aggregate(cr=c.cr.any())
    j = v.left_join(info, v.ip == info.ip).left_join(c, ["_tz", "_lang"])
    bad_ip = j.problem.isnull() & ~j.ip_ok.fill_null(False)
    problem = ibis.ifelse(bad_ip, ibis.literal("ip is not an IP address"), j.problem)
    cols = {c: j[c] for c in EVENT_COLUMNS if c not in ("ts", "ts_ms", "ip", "client_restricted")}
    parsed = j.select(
        src=j.src, line=j.line, problem=problem, ts=engine.timestamp(j.ts_ms), ts_ms=j.ts_ms, ip=j.ip,
        client_restricted=j.cr.fill_null(False), **cols,
    )  # fmt: skip
    parsed = engine.materialize("parsed_events", parsed)
    engine.drop("raw_events")
    events = engine.view("events", parsed.filter(parsed.problem.isnull()).select(*EVENT_COLUMNS))
    problems = _problems(engine, parsed, files, max_problems)
    seconds["validate"] = time.perf_counter() - t2

    accounts_table = None
    account_problems = None
    if accounts is not None:
        t3 = time.perf_counter()
        say("reading the accounts table")
        acc_files = discover([accounts], ACCOUNT_SUFFIXES)
        acc_raw, acc_tags = engine.raw_table(acc_files, ACCOUNT_FIELDS, "raw_accounts")
        acc = engine.materialize("parsed_accounts", validate(acc_raw, ACCOUNT_FIELDS, acc_tags))
        engine.drop("raw_accounts")
        ok = acc.filter(acc.problem.isnull())
        text = {f.name: ok[f.name] for f in ACCOUNT_FIELDS if f.kind == "text"}
        accounts_table = engine.view(
            "accounts",
            ok.select(
                account_id=ok.account_id, created=engine.timestamp(ok.created_ms), created_ms=ok.created_ms, **text
            ),
        )
        account_problems = _problems(engine, acc, acc_files, max_problems, account_checks(acc))
        seconds["accounts"] = time.perf_counter() - t3
    problems.checks = check_problems(engine, event_checks(parsed, accounts_table, now_ms=now_ms), files, max_problems)
    return Loaded(events, accounts_table, problems, account_problems, seconds, len(ips), len(files))


def _problems(engine: Engine, parsed: Any, files: list[SourceFile], limit: int, checks: Any = None) -> Problems:
    """Count and list the malformed rows of a parsed table (and the rows ``checks`` flags)."""
    bad = parsed.filter(parsed.problem.notnull())
    counts = engine.to_arrow(bad.group_by(["src", "problem"]).aggregate(n=bad.count())).to_pylist()
    listed = engine.to_arrow(bad.select("src", "line", "problem").order_by(["src", "line"]).limit(limit)).to_pylist()
    total = engine.to_arrow(parsed.aggregate(n=parsed.count())).column("n")[0].as_py()
    out = Problems(rows_read=int(total or 0))
    for row in counts:
        name = str(files[row["src"]].path)
        out.skipped += row["n"]
        out.by_reason[row["problem"]] = out.by_reason.get(row["problem"], 0) + row["n"]
        out.by_file[name] = out.by_file.get(name, 0) + row["n"]
    out.by_reason = dict(sorted(out.by_reason.items(), key=lambda kv: (-kv[1], kv[0])))
    out.listed = [Problem(str(files[r["src"]].path), int(r["line"]), r["problem"]) for r in listed]
    if checks is not None:
        out.checks = check_problems(engine, checks, files, limit)
    return out
