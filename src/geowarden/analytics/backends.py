"""Where the analyses run: DuckDB (embedded default) or Spark, behind one small ``Engine``.

An engine does what Ibis leaves to the backend: turn log files into the uniform *raw* table
(see ``load.py``), move small Arrow tables in and out, and materialise intermediate tables.
Everything else (validation, enrichment joins, the analyses) is one set of Ibis expressions.

- ``DuckDBEngine``: JSON Lines are split into lines in Python (``lines.py``: numpy over 64 MB
  blocks, zero-copy into Arrow) and parsed by DuckDB's JSON functions in parallel; Parquet and
  CSV are read by DuckDB itself. Tables live in memory and spill to a temporary directory.
- ``SparkEngine`` (``spark.py``): Spark reads the files itself (``spark.read.text`` /
  ``spark.read.parquet``) and parses JSON with ``try_parse_json``; the same raw table comes out.
  Imported only when chosen (pyspark is optional); it reads small CSV files with the DuckDB
  engine it is given.

The ``Engine`` protocol and the raw-column helpers both engines share are in ``engine.py``.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from geowarden.analytics.engine import (
    DYNAMIC,
    Dialect,
    Engine,
    SourceFile,
    TypeKind,
    raw_columns,
    static_tags,
    typed_columns,
)
from geowarden.errors import ConfigError
from geowarden.events import Field

BACKENDS = ("duckdb", "spark")


def open_engine(
    kind: str,
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    spark_master: str | None = None,
    spark_conf: Sequence[tuple[str, str]] = (),
) -> Engine:
    """An engine by name: ``duckdb`` or ``spark`` (on ``spark_master``, default ``local[2]``,
    with the extra Spark settings ``spark_conf``)."""
    if kind == "duckdb":
        return DuckDBEngine(threads=threads, memory_limit=memory_limit)
    if kind == "spark":
        from geowarden.analytics.spark import SparkEngine  # noqa: PLC0415 - pyspark is optional

        return SparkEngine(master=spark_master or "local[2]", local=DuckDBEngine, conf=spark_conf)
    raise ConfigError(f"unknown backend {kind!r} (one of {', '.join(BACKENDS)})")


@contextmanager
def _reading(f: SourceFile) -> Iterator[None]:
    """An unreadable file (missing, corrupt Parquet, truncated gzip) becomes one ConfigError line."""
    try:
        yield
    except (OSError, EOFError) as exc:
        raise ConfigError(f"{f.path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    except ConfigError:
        raise
    except Exception as exc:  # duckdb's errors: a corrupt Parquet file, an unreadable CSV
        if type(exc).__module__.split(".")[0] not in ("duckdb", "_duckdb"):
            raise
        raise ConfigError(f"{f.path}: cannot read: {str(exc).splitlines()[0]}") from None


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class DuckDBEngine:
    kind = "duckdb"

    def __init__(
        self,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
    ) -> None:
        import ibis  # noqa: PLC0415

        self._tmp = tempfile.mkdtemp(prefix="geowarden-duckdb-")  # DuckDB spills here
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._tmp, True)
        self.backend = ibis.duckdb.connect()
        self.con = self.backend.con
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute(f"SET temp_directory = {_lit(self._tmp)}")
        self.con.execute("SET preserve_insertion_order = false")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute(f"SET memory_limit = {_lit(memory_limit)}")
        self._views: set[str] = set()
        self._typed: dict[str, list[SourceFile]] = {}  # typed files behind each raw view, read lazily

    # -- raw ----------------------------------------------------------------------------------

    def raw_table(
        self, files: list[SourceFile], fields: tuple[Field, ...], name: str
    ) -> tuple[Any, dict[str, str | None]]:
        """The raw table of ``files`` (a view over typed files, a table when there are JSON
        Lines), and the fields whose tag is the same everywhere."""
        cols = raw_columns(fields)
        names = ", ".join(_q(c) for c, _ in cols)
        per_file: list[dict[str, str | None]] = []
        if all(f.format != "jsonl" for f in files):  # typed sources: a view, read where it is used
            selects = []
            for src, f in enumerate(files):
                with _reading(f):
                    select, tags = self._typed_select(src, f, fields)
                selects.append(select)
                per_file.append(tags)
            self.con.execute(f"CREATE OR REPLACE VIEW {_q(name)} ({names}) AS {' UNION ALL '.join(selects)}")
            self._views.add(name)
            self._typed[name] = list(files)
            return self.backend.table(name), static_tags(per_file, fields)
        self.con.execute(f"CREATE OR REPLACE TABLE {_q(name)} ({', '.join(f'{_q(c)} {t}' for c, t in cols)})")
        for src, f in enumerate(files):
            with _reading(f):
                if f.format == "jsonl":
                    self._insert_jsonl(name, names, src, f, fields)
                    per_file.append({})
                else:
                    select, tags = self._typed_select(src, f, fields)
                    per_file.append(tags)
                    self.con.execute(f"INSERT INTO {_q(name)} ({names}) {select}")
        return self.backend.table(name), static_tags(per_file, fields)

    def _typed_select(self, src: int, f: SourceFile, fields: tuple[Field, ...]) -> tuple[str, dict[str, str | None]]:
        return self._parquet_select(src, f, fields) if f.format == "parquet" else self._csv_select(src, f, fields)

    def _insert_jsonl(self, table: str, names: str, src: int, f: SourceFile, fields: tuple[Field, ...]) -> None:
        from geowarden.analytics.lines import read_lines  # noqa: PLC0415

        spec = "{" + ",".join(f'"{fl.name}":"JSON"' for fl in fields) + "}"
        inner, outer = [], []
        for fl in fields:
            # A JSON value as DuckDB writes it back (minified): its first character is its type,
            # and a string without escapes is its text between the quotes. No second parse.
            v = f"CAST(j.{_q(fl.name)} AS VARCHAR)"
            inner.append(f"{v} AS {_q(fl.name + '__j')}")
            jv = _q(fl.name + "__j")
            head = f"left({jv}, 1)"
            outer.append(
                f"CASE WHEN {head} <> '\"' THEN {jv} WHEN contains({jv}, '\\') THEN ({jv}::JSON ->> '$') "
                f"ELSE {jv}[2:-2] END AS {_q(fl.name)}"
            )
            tag = (
                f"CASE {head} WHEN '\"' THEN 'string' WHEN '{{' THEN 'object' WHEN '[' THEN 'array' "
                f"WHEN 't' THEN 'bool' WHEN 'f' THEN 'bool' WHEN 'n' THEN NULL ELSE 'number' END"
            )
            if fl.numeric:
                outer.append(f"CASE WHEN {tag} = 'number' THEN TRY_CAST({jv} AS DOUBLE) END AS {_q(fl.name + '__n')}")
            outer.append(f"{tag} AS {_q(fl.name + '__t')}")
        sql = f"""
            INSERT INTO {_q(table)} ({names})
            SELECT src, line, bad, {", ".join(outer)} FROM (
                SELECT {src}::INTEGER AS src, line,
                    CASE WHEN j IS NULL AND NOT json_valid(text) THEN 'not JSON'
                         WHEN j IS NULL THEN 'not a JSON object'
                         WHEN left(text, 1) = '{{' THEN NULL
                         WHEN NOT starts_with(ltrim(text, ' \t\r\n'), '{{') THEN 'not a JSON object'
                    END AS bad,
                    {", ".join(inner)}
                FROM (
                    SELECT line, text, try(json_transform(text, {_lit(spec)})) AS j
                    FROM chunk  -- blank lines are not rows; only a line that starts blank is trimmed
                    WHERE CASE WHEN left(text, 1) IN ('{{', '') THEN text <> ''
                               WHEN left(text, 1) IN (' ', '\t', '\r', '\n') THEN trim(text, ' \t\r\n') <> ''
                               ELSE true END
                )
            )"""  # noqa: S608 - names are ours, paths are quoted
        for chunk in read_lines(f.path, gzip=f.gzip):
            self.con.register("chunk", chunk)
            try:
                self.con.execute(sql)
            finally:
                self.con.unregister("chunk")

    def _describe(self, source: str) -> dict[str, str]:
        return {r[0]: str(r[1]).upper() for r in self.con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}  # noqa: S608

    def _parquet_select(self, src: int, f: SourceFile, fields: tuple[Field, ...]) -> tuple[str, dict[str, str | None]]:
        source = f"read_parquet({_lit(str(f.path))}, file_row_number = true)"
        types = self._describe(source)
        cols = [f"{src}::INTEGER", "file_row_number + 1", "NULL::VARCHAR"]
        tags: dict[str, str | None] = {}
        for fl in fields:
            sql, tags[fl.name] = _typed_column(fl, types.get(fl.name))
            cols.extend(sql)
        return f"SELECT {', '.join(cols)} FROM {source}", tags  # noqa: S608

    def _csv_select(self, src: int, f: SourceFile, fields: tuple[Field, ...]) -> tuple[str, dict[str, str | None]]:
        source = f"read_csv({_lit(str(f.path))}, header = true, all_varchar = true)"
        types = self._describe(source)
        cols = [f"{src}::INTEGER", "ordinality + 1", "NULL::VARCHAR"]
        tags: dict[str, str | None] = {}
        for fl in fields:
            if fl.name not in types:
                cols.extend(_absent(fl))
                tags[fl.name] = None
                continue
            tags[fl.name] = DYNAMIC if fl.numeric else "string"
            c = _q(fl.name)
            if fl.numeric:  # CSV has no types: a numeric text is a number
                cols.append(f"CASE WHEN TRY_CAST({c} AS DOUBLE) IS NULL THEN {c} END")
                cols.append(f"TRY_CAST({c} AS DOUBLE)")
                cols.append(f"CASE WHEN TRY_CAST({c} AS DOUBLE) IS NOT NULL THEN 'number' ELSE 'string' END")
            else:
                cols.extend([c, "'string'"])
        return f"SELECT {', '.join(cols)} FROM {source} WITH ORDINALITY", tags  # noqa: S608

    # -- tables -------------------------------------------------------------------------------

    def materialize(self, name: str, expr: Any) -> Any:
        with self._reading_views():
            return self.backend.create_table(name, expr, overwrite=True)

    @contextmanager
    def _reading_views(self) -> Iterator[None]:
        """A typed file (Parquet) behind a raw view is decoded only when the view is read: a
        damaged data page shows up here, and becomes one ConfigError line naming the files."""
        files = [f for fs in self._typed.values() for f in fs]
        if not files:
            yield
            return
        with _reading(SourceFile(Path(", ".join(str(f.path) for f in files)), files[0].format)):
            yield

    def from_arrow(self, name: str, table: Any) -> Any:
        return self.backend.create_table(name, table, overwrite=True)

    def to_arrow(self, expr: Any) -> Any:
        # Straight through DuckDB: ibis's own to_pyarrow imports pandas (seconds, once).
        with self._reading_views():
            return self.con.execute(str(self.backend.compile(expr))).to_arrow_table()

    def view(self, name: str, expr: Any) -> Any:
        return self.backend.create_view(name, expr, overwrite=True)

    def timestamp(self, ms: Any) -> Any:
        """Epoch milliseconds -> a UTC timestamp column."""
        import ibis.expr.datatypes as dt  # noqa: PLC0415

        return ms.as_timestamp("ms").cast(dt.Timestamp(timezone="UTC"))

    def drop(self, name: str) -> None:
        kind = "VIEW" if name in self._views else "TABLE"
        self._views.discard(name)
        self._typed.pop(name, None)
        self.con.execute(f"DROP {kind} IF EXISTS {_q(name)}")

    def close(self) -> None:
        self.backend.disconnect()
        self._cleanup()


def _typed_column(fl: Field, dtype: str | None) -> tuple[list[str], str | None]:
    """Raw columns of one field of a Parquet source, by its DuckDB type (``engine.typed_columns``)."""
    return typed_columns(fl, None if dtype is None else _kind(dtype), _q(fl.name), _DUCKDB)


def _kind(dtype: str) -> TypeKind:
    base = dtype.split("(", maxsplit=1)[0].split(" ", maxsplit=1)[0]
    if dtype.startswith(("STRUCT", "MAP")):
        return "object"
    if dtype.endswith("]"):
        return "array"
    if base == "BOOLEAN":
        return "bool"
    if base.startswith(("TIMESTAMP", "DATE")):
        return "timestamp"
    if base in _NUMERIC_TYPES:
        return "number"
    return "string" if base == "VARCHAR" else "other"


_NULL_TEXT, _NULL_NUM = "NULL::VARCHAR", "NULL::DOUBLE"
_DUCKDB = Dialect(
    null_text=_NULL_TEXT,
    null_num=_NULL_NUM,
    as_text=lambda c, kind: c if kind == "string" else f"CAST({c} AS VARCHAR)",
    epoch_ms=lambda c: f"epoch_ms({c}::TIMESTAMP)::DOUBLE",
    as_double=lambda c: f"CAST({c} AS DOUBLE)",
    literal=_lit,
)


def _absent(fl: Field) -> list[str]:
    return typed_columns(fl, None, "", _DUCKDB)[0]


_NUMERIC_TYPES = frozenset(
    ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
     "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
)  # fmt: skip
