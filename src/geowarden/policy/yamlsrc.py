"""YAML that remembers where each value came from, for "file, line and reason" errors.

``load(path)`` returns plain Python values plus a ``Where`` that maps a path of keys and indexes
(``("rules", 2, "when")``) to its line in the file. Only the YAML safe subset is accepted, and a
duplicate key is an error rather than a silent overwrite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from geowarden.errors import ConfigError

Key = tuple[str | int, ...]


@dataclass(slots=True)
class Where:
    file: str
    lines: dict[Key, int] = field(default_factory=dict)

    def line(self, path: Key) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]

    def error(self, path: Key, reason: str) -> ConfigError:
        line = self.line(path)
        place = f"{self.file}:{line}" if line else self.file
        dotted = ".".join(str(p) for p in path)
        return ConfigError(f"{place}: {dotted + ': ' if dotted else ''}{reason}")


def load(path: Path) -> tuple[Any, Where]:
    where = Where(str(path))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return loads(text.removeprefix("\ufeff"), where)


def loads(text: str, where: Where) -> tuple[Any, Where]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        place = f"{where.file}:{mark.line + 1}" if mark is not None else where.file
        raise ConfigError(f"{place}: not valid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{where.file}: not valid YAML: nested too deeply") from None
    if node is None:
        return None, where
    try:
        return _build(node, (), where), where
    except RecursionError:
        raise ConfigError(f"{where.file}: nested too deeply") from None


def _build(node: yaml.Node, path: Key, where: Where) -> Any:
    where.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, path, where)
            if isinstance(key, (list, dict)):
                raise where.error(path, "mapping keys must be plain values")
            if key in out:
                raise Where(where.file, {path: key_node.start_mark.line + 1}).error(path, f"duplicate key {key!r}")
            out[key] = _build(value_node, (*path, key), where)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), where) for i, item in enumerate(node.value)]
    return _scalar(node, path, where)


def _scalar(node: yaml.Node, path: Key, where: Where) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return _build(node, path, where)
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise where.error(path, f"bad value: {getattr(exc, 'problem', exc)}") from None
    finally:
        loader.dispose()
