"""The Spark engine: the same raw table as DuckDB's, read by Spark itself, and Ibis on top.

Spark reads the files on its executors, so the job scales with the cluster:

- JSON Lines: ``spark.read.text`` (Hadoop's line reader: ``\\n``, ``\\r\\n`` and ``\\r`` end a
  line, as in ``lines.py``); each line's number is its position in its split (the split's rows
  are contiguous in one partition, so ``monotonically_increasing_id`` minus the split's first id)
  plus the lines of the splits before it (a window over the splits of the file).
  ``try_parse_json`` parses a line into a VARIANT; ``schema_of_variant`` gives each field's JSON
  type (the raw tag), ``try_variant_get`` its text and number. Needs Spark 4.
- Parquet: ``spark.read.parquet`` with ``_metadata.row_index`` (the row number), each column
  mapped by its Spark type as DuckDB maps it.
- CSV (accounts tables): small; read by the ``local`` engine (DuckDB) on the driver and handed
  over as Arrow.

Configuration (given by the caller; the CLI reads it with ``geowarden.settings``): the master is
``--spark-master``, else ``GEOWARDEN_SPARK_MASTER``, else ``local[2]``; ``GEOWARDEN_SPARK_CONF``
adds settings (``key=value`` separated by spaces, e.g.
``spark.executor.memory=8g spark.sql.shuffle.partitions=400``). On a cluster the log paths must
be readable by the executors under the same names (a shared file system). An already running
``SparkSession`` in the process is reused (tests start one per module).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ibis
import ibis.expr.datatypes as dt

from geowarden.analytics.engine import (
    DYNAMIC,
    JSON_TAGS,
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

DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.variant.allowDuplicateKeys": "true",
    "spark.ui.showConsoleProgress": "false",  # stderr carries geowarden's own progress
}


def session(master: str, conf: Sequence[tuple[str, str]] = ()) -> Any:
    """The process's SparkSession (started with ``master``, geowarden's defaults and the extra
    settings ``conf`` if none is running)."""
    try:
        from pyspark.sql import SparkSession  # noqa: PLC0415
    except ImportError:
        raise ConfigError("the Spark backend needs pyspark (pip install 'geowarden[spark]')") from None
    builder = SparkSession.builder.master(master).appName("geowarden-analyze")
    for key, value in {**DEFAULT_CONF, **dict(conf)}.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: no Java, a bad master URL
        raise ConfigError(f"cannot start Spark ({master}): {str(exc).splitlines()[0][:200]}") from None
    spark.sparkContext.setLogLevel("ERROR")
    major = int(spark.version.split(".")[0])
    if major < 4:
        raise ConfigError(f"the Spark backend needs Spark 4 (try_parse_json), not {spark.version}")
    for key in ("spark.sql.session.timeZone", "spark.sql.ansi.enabled", "spark.sql.variant.allowDuplicateKeys"):
        spark.conf.set(key, DEFAULT_CONF[key])  # a reused session gets the settings results depend on
    return spark


class SparkEngine:
    kind = "spark"

    def __init__(
        self, master: str = "local[2]", *, local: Callable[[], Engine], conf: Sequence[tuple[str, str]] = ()
    ) -> None:
        """``local``: an engine on the driver for small typeless files (CSV accounts tables)."""
        self.spark = session(master, conf)
        self._local = local
        self.backend = ibis.pyspark.connect(self.spark)
        self._frames: dict[str, Any] = {}  # persisted DataFrames by view name

    # -- raw ----------------------------------------------------------------------------------

    def raw_table(
        self, files: list[SourceFile], fields: tuple[Field, ...], name: str
    ) -> tuple[Any, dict[str, str | None]]:
        names = [c for c, _ in raw_columns(fields)]
        frames = []
        per_file: list[dict[str, str | None]] = []
        for src, f in enumerate(files):
            if f.format == "jsonl":
                frames.append(self._jsonl(src, f, fields))
                per_file.append({})
            elif f.format == "parquet":
                df, tags = self._parquet(src, f, fields)
                frames.append(df)
                per_file.append(tags)
            else:
                frames.append(self._via_duckdb(src, f, fields))
                per_file.append({fl.name: DYNAMIC for fl in fields})
        df = frames[0]
        for more in frames[1:]:
            df = df.unionByName(more)
        df = df.select(*names).persist()
        self._register(name, df)
        return self.backend.table(name), static_tags(per_file, fields)

    def _jsonl(self, src: int, f: SourceFile, fields: tuple[Field, ...]) -> Any:
        view = f"gw_text_{src}"
        self._read(f, lambda: self.spark.read.text(str(f.path))).createOrReplaceTempView(view)
        cols = []
        for fl in fields:
            path = f"'$.{fl.name}'"
            sub = f"variant_get(v, {path}, 'variant')"
            tags = " ".join(f"WHEN st_{fl.name} = '{k}' THEN '{v}'" for k, v in JSON_TAGS.items() if k != "VARCHAR")
            tag = (
                f"CASE WHEN st_{fl.name} IS NULL OR st_{fl.name} = 'VOID' THEN NULL "
                f"WHEN st_{fl.name} LIKE 'OBJECT%' THEN 'object' WHEN st_{fl.name} LIKE 'ARRAY%' THEN 'array' "
                f"{tags} ELSE 'number' END"
            )
            cols.append((fl, sub, tag, path))
        inner = ", ".join(f"schema_of_variant({sub}) AS st_{fl.name}" for fl, sub, _, _ in cols)
        outer = []
        for fl, sub, tag, path in cols:
            outer.append(f"{tag} AS {fl.name}__t")
            outer.append(
                f"CASE WHEN {tag} IS NULL THEN NULL WHEN {tag} IN ('object', 'array') THEN to_json({sub}) "
                f"ELSE try_variant_get(v, {path}, 'string') END AS {fl.name}"
            )
            if fl.numeric:
                outer.append(
                    f"CASE WHEN {tag} = 'number' THEN try_variant_get(v, {path}, 'double') END AS {fl.name}__n"
                )
        sql = f"""
            WITH lines AS (
                SELECT value, input_file_block_start() AS b, monotonically_increasing_id() AS mid FROM {view}
            ),
            blocks AS (SELECT b, count(*) AS n FROM lines GROUP BY b),
            offsets AS (
                SELECT b, coalesce(sum(n) OVER (ORDER BY b ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS off
                FROM blocks
            ),
            numbered AS (
                SELECT l.value, o.off + l.mid - min(l.mid) OVER (PARTITION BY l.b) + 1 AS line
                FROM lines l JOIN offsets o ON l.b = o.b
            ),
            parsed AS (
                SELECT line, value, try_parse_json(value) AS v FROM numbered
                WHERE trim(BOTH ' \\t\\r\\n' FROM value) <> ''
            ),
            typed AS (SELECT line, value, v, schema_of_variant(v) AS st, {inner} FROM parsed)
            SELECT CAST({src} AS INT) AS src, CAST(line AS BIGINT) AS line,
                CASE WHEN v IS NULL THEN 'not JSON' WHEN NOT (st LIKE 'OBJECT%') THEN 'not a JSON object' END AS bad,
                {", ".join(outer)}
            FROM typed"""  # noqa: S608 - names are ours, paths are quoted
        return self.spark.sql(sql)

    def _parquet(self, src: int, f: SourceFile, fields: tuple[Field, ...]) -> tuple[Any, dict[str, str | None]]:
        df = self._read(f, lambda: self.spark.read.parquet(str(f.path)))
        types = {fl.name: fl.dataType for fl in df.schema.fields}
        view = f"gw_parquet_{src}"
        df.select("*", "_metadata.row_index").createOrReplaceTempView(view)
        cols = [f"CAST({src} AS INT) AS src", "CAST(row_index + 1 AS BIGINT) AS line", "CAST(NULL AS STRING) AS bad"]
        tags: dict[str, str | None] = {}
        for fl in fields:
            sql, tags[fl.name] = _typed(fl, types.get(fl.name))
            cols.extend(sql)
        return self.spark.sql(f"SELECT {', '.join(cols)} FROM {view}"), tags  # noqa: S608

    def _via_duckdb(self, src: int, f: SourceFile, fields: tuple[Field, ...]) -> Any:
        """A small typeless file (CSV accounts): DuckDB on the driver, then Arrow to Spark."""
        local = self._local()
        try:
            raw, _ = local.raw_table([f], fields, "raw")
            table = local.to_arrow(raw)
        finally:
            local.close()
        import pyarrow as pa  # noqa: PLC0415

        table = table.set_column(0, "src", pa.array([src] * table.num_rows, type=pa.int32()))
        return self.spark.createDataFrame(table)

    @staticmethod
    def _read(f: SourceFile, action: Any) -> Any:
        try:
            return action()
        except Exception as exc:  # Spark's AnalysisException and the like: one line
            raise ConfigError(f"{f.path}: cannot read: {str(exc).splitlines()[0][:200]}") from None

    # -- tables -------------------------------------------------------------------------------

    def _register(self, name: str, df: Any) -> None:
        self.drop(name)
        df.createOrReplaceTempView(name)
        self._frames[name] = df

    def materialize(self, name: str, expr: Any) -> Any:
        df = self.spark.sql(str(self.backend.compile(expr))).persist()
        df.count()
        self._register(name, df)
        return self.backend.table(name)

    def from_arrow(self, name: str, table: Any) -> Any:
        df = self.spark.createDataFrame(table) if table.num_rows else self.spark.createDataFrame([], _schema(table))
        self._register(name, df.persist())
        return self.backend.table(name)

    def to_arrow(self, expr: Any) -> Any:
        return self.backend.to_pyarrow(expr)

    def view(self, name: str, expr: Any) -> Any:
        return self.backend.create_view(name, expr, overwrite=True)

    def timestamp(self, ms: Any) -> Any:
        """Epoch milliseconds -> a timestamp (Spark's ``timestamp_millis``; Ibis has no
        millisecond conversion for Spark)."""
        return _timestamp_millis(ms)

    def drop(self, name: str) -> None:
        df = self._frames.pop(name, None)
        self.spark.catalog.dropTempView(name)
        if df is not None:
            df.unpersist()

    def close(self) -> None:
        for name in list(self._frames):
            self.drop(name)


def _schema(table: Any) -> Any:
    """The Spark schema of an (empty) Arrow table."""
    from pyspark.sql.pandas.types import from_arrow_schema  # noqa: PLC0415

    return from_arrow_schema(table.schema)


def _timestamp_millis_signature(ms: int) -> dt.Timestamp(timezone="UTC"):  # type: ignore[valid-type]
    """Spark SQL's built-in ``timestamp_millis``."""


_timestamp_millis = ibis.udf.scalar.builtin(name="timestamp_millis")(_timestamp_millis_signature)


_SPARK = Dialect(
    null_text="CAST(NULL AS STRING)",
    null_num="CAST(NULL AS DOUBLE)",
    as_text=lambda c, kind: f"to_json({c})" if kind in ("object", "array") else f"CAST({c} AS STRING)",
    epoch_ms=lambda c: f"CAST(unix_millis(CAST({c} AS TIMESTAMP)) AS DOUBLE)",
    as_double=lambda c: f"CAST({c} AS DOUBLE)",
    literal=lambda text: f"'{text}'",
)


def _typed(fl: Field, dtype: Any) -> tuple[list[str], str | None]:
    """Raw columns of one Parquet column, by its Spark type (``engine.typed_columns``), named."""
    names = [fl.name, *([f"{fl.name}__n"] if fl.numeric else []), f"{fl.name}__t"]
    values, tag = typed_columns(fl, None if dtype is None else _kind(dtype), f"`{fl.name}`", _SPARK)
    return [f"{v} AS {n}" for v, n in zip(values, names, strict=True)], tag


def _kind(dtype: Any) -> TypeKind:
    from pyspark.sql import types as T  # noqa: N812, PLC0415

    if isinstance(dtype, (T.StructType, T.MapType)):
        return "object"
    if isinstance(dtype, T.ArrayType):
        return "array"
    if isinstance(dtype, T.BooleanType):
        return "bool"
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType, T.DateType)):
        return "timestamp"
    if isinstance(dtype, T.NumericType):
        return "number"
    return "string" if isinstance(dtype, T.StringType) else "other"
