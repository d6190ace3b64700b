"""What every analytics engine provides, and the raw table both engines build (see ``load.py``).

``Engine`` is the small protocol ``load.py`` uses; ``SourceFile`` is one input file; the
raw-column helpers are shared by the SQL of both engines. ``backends.py`` holds the DuckDB engine
and chooses an engine by name (``open_engine``); ``spark.py`` holds the Spark engine. This module
imports neither, and neither engine module imports the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from geowarden.events import Field


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: Path
    format: Literal["jsonl", "parquet", "csv"]

    @property
    def gzip(self) -> bool:
        return self.path.suffix == ".gz"


class Engine(Protocol):
    kind: str
    backend: Any  # the ibis backend

    def raw_table(
        self, files: list[SourceFile], fields: tuple[Field, ...], name: str
    ) -> tuple[Any, dict[str, str | None]]: ...
    def materialize(self, name: str, expr: Any) -> Any: ...
    def from_arrow(self, name: str, table: Any) -> Any: ...
    def to_arrow(self, expr: Any) -> Any: ...
    def view(self, name: str, expr: Any) -> Any: ...
    def timestamp(self, ms: Any) -> Any: ...
    def drop(self, name: str) -> None: ...
    def close(self) -> None: ...


# -- raw columns, shared by the SQL of both engines --------------------------------------------

#: DuckDB ``json_type`` (and Spark ``schema_of_variant``) answers -> raw type tags.
JSON_TAGS = {"VARCHAR": "string", "STRING": "string", "BOOLEAN": "bool", "OBJECT": "object", "ARRAY": "array"}


def raw_columns(fields: tuple[Field, ...]) -> list[tuple[str, str]]:
    """(name, DuckDB type) of the raw table."""
    cols = [("src", "INTEGER"), ("line", "BIGINT"), ("bad", "VARCHAR")]
    for f in fields:
        cols.append((f.name, "VARCHAR"))
        if f.numeric:
            cols.append((f"{f.name}__n", "DOUBLE"))
        cols.append((f"{f.name}__t", "VARCHAR"))
    return cols


DYNAMIC = "*"  # a field whose tag varies from row to row (JSON, CSV numbers)


def static_tags(per_file: list[dict[str, str | None]], fields: tuple[Field, ...]) -> dict[str, str | None]:
    """The fields whose tag is one constant over every file (``None``: absent everywhere)."""
    out: dict[str, str | None] = {}
    for f in fields:
        seen = {tags.get(f.name, DYNAMIC) for tags in per_file}
        if len(seen) == 1 and DYNAMIC not in seen:
            out[f.name] = seen.pop()
    return out


#: What a typed (Parquet) column holds, as each engine classifies its own type names.
#: ``string`` is the engine's own text type; ``other`` anything else, read as text.
TypeKind = Literal["object", "array", "bool", "timestamp", "number", "string", "other"]


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one engine's SQL spells what ``typed_columns`` needs (``c`` is a quoted column)."""

    null_text: str
    null_num: str
    as_text: Callable[[str, TypeKind], str]  # a column of that kind as text
    epoch_ms: Callable[[str], str]  # a timestamp or date column as epoch milliseconds (double)
    as_double: Callable[[str], str]
    literal: Callable[[str], str]


def typed_columns(fl: Field, kind: TypeKind | None, c: str, sql: Dialect) -> tuple[list[str], str | None]:
    """The raw values (text, [number,] tag) of one field of a typed source whose column ``c`` is of
    ``kind`` (None: absent), and the tag, a constant per file. The same mapping on every engine:
    objects, arrays, booleans and strings keep their text; numbers give a number to numeric fields
    and text to the others; a timestamp gives epoch milliseconds to ``ts``, text elsewhere; any other
    type is read as text."""
    if kind is None:
        return ([sql.null_text, sql.null_num, sql.null_text] if fl.numeric else [sql.null_text, sql.null_text]), None
    text, num = sql.null_text, sql.null_num
    if kind == "timestamp" and fl.kind == "ts":
        tag, num = "number", sql.epoch_ms(c)
    elif kind == "number":
        tag = "number"
        if fl.numeric:
            num = sql.as_double(c)
        else:
            text = sql.as_text(c, kind)
    else:
        tag = "string" if kind in ("timestamp", "other") else kind
        text = sql.as_text(c, kind)
    return ([text, num, sql.literal(tag)] if fl.numeric else [text, sql.literal(tag)]), tag
