"""The shape of the package, read from its source with ``ast`` (nothing of it is imported).

- No import cycle among the modules of ``src/geowarden``. Every ``import`` and ``from ... import``
  counts, relative ones too, and those inside functions and under ``if TYPE_CHECKING:``: a cycle
  that only a lazy import keeps from failing at start-up is still a cycle. ``import a.b`` and
  ``from a.b import x`` import ``a.b``; ``from a import b`` imports the package ``a`` (it reads a
  name from ``a/__init__.py``) and, when ``a.b`` is a module, ``a.b`` too. The parent packages
  Python initialises on the way to ``a.b`` are not edges (every submodule would depend on them).
- No environment read outside ``settings.py``: no ``os.environ``, ``os.environb``, ``os.getenv``
  (however ``os`` is imported or named) and no ``from os import environ``/``getenv``.
- No module over :data:`MAX_LINES` lines unless its docstring says it is one concept: the docstring
  contains :data:`ONE_CONCEPT` ("one concept", any case), with a sentence saying which.
- Every module has a docstring.

Each rule is checked once over the whole tree and names every offender in its failure; the
checkers themselves are tested on small packages written to a temporary directory.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import REPO

PACKAGE = REPO / "src" / "geowarden"
MAX_LINES = 500
ONE_CONCEPT = "one concept"
#: Where the environment may be read.
SETTINGS = frozenset({"geowarden.settings"})
ENV_READS = frozenset({"environ", "environb", "getenv"})


@dataclass(frozen=True)
class Module:
    name: str  # dotted, "geowarden.intel.build"; a package is its __init__
    path: Path
    is_package: bool
    tree: ast.Module
    lines: int


def modules(root: Path = PACKAGE) -> dict[str, Module]:
    """Every ``.py`` file under ``root`` (a package directory), parsed, by dotted name."""
    found: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        text = path.read_text(encoding="utf-8")
        found[name] = Module(name, path, is_package, ast.parse(text, filename=str(path)), len(text.splitlines()))
    return found


def _absolute(mod: Module, node: ast.ImportFrom) -> str:
    """The absolute module a ``from`` import names (relative ones resolved against ``mod``)."""
    if node.level == 0:
        return node.module or ""
    package = mod.name.split(".") if mod.is_package else mod.name.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(mod: Module, known: set[str] | dict[str, Module]) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in ``mod`` of a module in ``known``."""
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(mod, node)
            if base in known:
                yield base, node.lineno
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    yield f"{base}.{alias.name}", node.lineno


def import_graph(mods: dict[str, Module]) -> dict[str, dict[str, int]]:
    """module -> {imported module: first line importing it}, within ``mods``, no self-edges."""
    graph: dict[str, dict[str, int]] = {name: {} for name in mods}
    for name, mod in mods.items():
        for target, line in imports(mod, mods):
            if target != name:
                graph[name].setdefault(target, line)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def one_cycle(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """A shortest import path from the component's first module back to itself, within it."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w == start:
                return [*paths[v], start]
            if w in members and w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    raise AssertionError(f"{component} is not a cycle")


def describe_cycles(graph: dict[str, dict[str, int]]) -> list[str]:
    out = []
    for component in cycles(graph):
        path = one_cycle(graph, component)
        steps = " -> ".join(f"{a} (line {graph[a][b]})" for a, b in itertools.pairwise(path))
        out.append(f"{', '.join(component)}: e.g. {steps} -> {path[-1]}")
    return out


def environment_reads(mod: Module) -> list[str]:
    """``line: what`` for every read of the process environment in ``mod``."""
    os_names = {"os"}
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            os_names |= {a.asname or a.name for a in node.names if a.name == "os"}
    reads = []
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "os":
            reads += [f"{node.lineno}: from os import {a.name}" for a in node.names if a.name in ENV_READS]
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in ENV_READS
            and isinstance(node.value, ast.Name)
            and node.value.id in os_names
        ):
            reads.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return sorted(set(reads), key=lambda r: int(r.split(":")[0]))


def says_one_concept(mod: Module) -> bool:
    return ONE_CONCEPT in (ast.get_docstring(mod.tree) or "").lower()


# -- the rules, over src/geowarden -----------------------------------------------------------------


@pytest.fixture(scope="module")
def package() -> dict[str, Module]:
    mods = modules()
    assert "geowarden.settings" in mods and len(mods) > 50
    return mods


def test_no_import_cycle(package: dict[str, Module]) -> None:
    found = describe_cycles(import_graph(package))
    assert not found, "import cycles in src/geowarden:\n" + "\n".join(found)


def test_the_environment_is_read_only_in_settings(package: dict[str, Module]) -> None:
    found = [
        f"{mod.path.relative_to(REPO)}:{read}"
        for name, mod in package.items()
        if name not in SETTINGS
        for read in environment_reads(mod)
    ]
    assert not found, "environment read outside settings.py:\n" + "\n".join(found)


def test_long_modules_say_they_are_one_concept(package: dict[str, Module]) -> None:
    found = [
        f"{mod.path.relative_to(REPO)}: {mod.lines} lines"
        for mod in package.values()
        if mod.lines > MAX_LINES and not says_one_concept(mod)
    ]
    assert not found, f"modules over {MAX_LINES} lines whose docstring does not say {ONE_CONCEPT!r}:\n" + "\n".join(
        found
    )


def test_every_module_has_a_docstring(package: dict[str, Module]) -> None:
    found = [str(mod.path.relative_to(REPO)) for mod in package.values() if not ast.get_docstring(mod.tree)]
    assert not found, "modules without a docstring:\n" + "\n".join(found)


# -- the checkers, on small packages ---------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> dict[str, Module]:
    for rel, text in files.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return modules(root / "pkg")


CYCLES = [
    ({"a.py": "from pkg import b\n", "b.py": "import pkg.a\n"}, [["pkg.a", "pkg.b"]]),
    ({"a.py": "from . import b\n", "b.py": "from .a import x\n"}, [["pkg.a", "pkg.b"]]),
    ({"a.py": "def f():\n    from pkg.b import y\n", "b.py": "from pkg.a import f\n"}, [["pkg.a", "pkg.b"]]),
    (
        {
            "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub.c import C\n",
            "sub/__init__.py": "",
            "sub/c.py": "from ..a import A\n",
        },
        [["pkg.a", "pkg.sub.c"]],
    ),
    ({"__init__.py": "from pkg.a import A\n", "a.py": "from pkg import VERSION\n"}, [["pkg", "pkg.a"]]),
    ({"sub/__init__.py": "from . import c\n", "sub/c.py": "from pkg.a import A\n", "a.py": "import pkg.sub\n"},
     [["pkg.a", "pkg.sub", "pkg.sub.c"]]),
    ({"a.py": "from pkg import b\n", "b.py": "import os\nfrom pkg.sub import c\n", "sub/__init__.py": "",
      "sub/c.py": "x = 1\n"}, []),
    ({"__init__.py": "from pkg.a import A\n", "a.py": "from pkg import b\n", "b.py": ""}, [["pkg", "pkg.a"]]),
    ({"sub/__init__.py": "", "sub/c.py": "from pkg.sub import d\n", "sub/d.py": "import pkg.a\n"}, []),
    ({"sub/__init__.py": "from pkg.sub.c import C\n", "sub/c.py": "from pkg.sub.d import D\n", "sub/d.py": ""}, []),
]  # fmt: skip


@pytest.mark.parametrize(("files", "want"), CYCLES)
def test_the_cycle_finder(tmp_path: Path, files: dict[str, str], want: list[list[str]]) -> None:
    graph = import_graph(_write(tmp_path, {"__init__.py": "", **files}))
    assert cycles(graph) == want
    for component, text in zip(want, describe_cycles(graph), strict=True):
        assert text.startswith(", ".join(component)) and "(line " in text


ENVIRONMENT = [
    ("import os\nx = os.environ['A']\n", ["2: os.environ"]),
    ("import os as o\nx = o.getenv('A')\n", ["2: o.getenv"]),
    ("from os import environ, path\n", ["1: from os import environ"]),
    ("import os\ndef f(env=None):\n    return os.environ if env is None else env\n", ["3: os.environ"]),
    ("import os\nx = os.path.join('a', 'b')\nenviron = {}\ny = environ.get('A')\n", []),
]


@pytest.mark.parametrize(("text", "want"), ENVIRONMENT)
def test_the_environment_finder(tmp_path: Path, text: str, want: list[str]) -> None:
    mods = _write(tmp_path, {"__init__.py": "", "m.py": text})
    assert environment_reads(mods["pkg.m"]) == want


def test_the_one_concept_marker(tmp_path: Path) -> None:
    mods = _write(tmp_path, {
        "__init__.py": "",
        "big.py": '"""The policy engine: one concept (compile and evaluate), kept together."""\n',
        "other.py": '"""Several things."""\n',
        "bare.py": "x = 1\n",
    })  # fmt: skip
    assert [n for n, m in sorted(mods.items()) if says_one_concept(m)] == ["pkg.big"]
    assert not ast.get_docstring(mods["pkg.bare"].tree)
