"""What every fuzz test shares: the command line run in this process, the rule a run must keep,
the damaged inputs, and a count of the inputs each reader met (printed at the end of the run).

The rule (issue 21): never exit 70 and never a traceback; a malformed item is reported with its
file and line (exit 3 in a batch) while every valid item is still answered in input order; a run
that read nothing usable says so and exits non-zero.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st

from geowarden.cli import main

#: Generated inputs met, by reader (``pytest_terminal_summary`` in conftest.py prints them).
MET: Counter[str] = Counter()


def costly() -> settings:
    """Settings for a test whose every example costs a second or more (a DuckDB run, a snapshot
    build): a quarter of the profile's examples (at least 4)."""
    return settings(max_examples=max(4, settings.default.max_examples // 4))


@dataclass(frozen=True, slots=True)
class Run:
    code: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with every ``GEOWARDEN_*`` variable replaced by ``env`` for the block."""
    saved = dict(os.environ)
    for k in [k for k in os.environ if k.startswith("GEOWARDEN_")]:
        del os.environ[k]
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_cli(args: list[str], env: Mapping[str, str], *, stdin: bytes = b"", reader: str | None = None) -> Run:
    """``geowarden ARGS`` in this process, its stdin ``stdin``; the exit code and both streams.

    Checks the rule every run keeps: no internal error (exit 70), no traceback."""
    if reader is not None:
        MET[reader] += 1
    out, err = io.StringIO(), io.StringIO()
    fake_in = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors="replace")
    old_in = sys.stdin
    sys.stdin = fake_in
    code = 0
    try:
        with environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(args)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdin = old_in
    run = Run(code, out.getvalue(), err.getvalue())
    assert run.code != 70, f"internal error for {args!r}: {run.stderr[-2000:]}"
    assert "Traceback" not in run.stderr, run.stderr[-4000:]
    return run


# -- damaged text ------------------------------------------------------------------------------

BOM = b"\xef\xbb\xbf"
CONTROL = "".join(chr(c) for c in range(32) if chr(c) not in "\r\n") + "\x7f\x85\u2028\u2029\ufeff"

#: Text of one line (no line break in it): control characters, NUL, odd Unicode, markup.
junk_text = st.one_of(
    st.text(alphabet=st.sampled_from(CONTROL + '#[]{}":,./\\-01289azAZ\u00e9\u4e2d\ufffd '), max_size=40),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=40),
    st.sampled_from(["\x00", "1.2.\x003.4", "[bold]x[/bold]", "#", " # comment", "\ufeff8.8.8.8", "%s%n", "\t"]),
)

#: Raw bytes of one line: invalid UTF-8 and lone continuation bytes, without a line break.
junk_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))

LONG_LINE = "x" * (1 << 20)  # a 1 MB line


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a generated file: ``good`` lines must be answered, the others reported."""

    raw: bytes
    good: bool | None  # None: either answered or reported, as the contract says


def file_bytes(lines: list[Line], *, bom: bool, crlf: bool, final_newline: bool) -> bytes:
    """The file the lines make: optional BOM, LF or CRLF ends, with or without a final break."""
    end = b"\r\n" if crlf else b"\n"
    body = end.join(line.raw for line in lines)
    if lines and final_newline:
        body += end
    return (BOM if bom else b"") + body


def write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def reported_lines(stderr: str, where: str) -> set[int]:
    """The line numbers ``stderr`` reports for ``where`` (``FILE line N`` or ``FILE:N``)."""
    found = re.findall(re.escape(where) + r"(?: line |:)(\d+)", stderr)
    return {int(n) for n in found}
