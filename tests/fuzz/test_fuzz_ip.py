"""``geowarden ip``: arguments, ``--file`` and stdin, with damaged lines among good ones."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fuzz.fuzzkit import LONG_LINE, Line, file_bytes, junk_bytes, junk_text, reported_lines, run_cli, write

GOOD = ["8.8.8.8", "1.2.4.8", "2400:3200::1", "5.1.1.1", "::ffff:1.2.4.8", "  6.6.6.6  ", "8.8.8.8 # a comment"]


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _kept(raw: bytes) -> str:
    """What the reader keeps of a line: the text before a comment, stripped."""
    return raw.decode("utf-8", "replace").removeprefix("\ufeff").split("#", 1)[0].strip()


bad_line = st.one_of(
    junk_text.map(lambda s: s.encode("utf-8", "surrogatepass")),
    junk_bytes,
    st.just(LONG_LINE.encode()),
).filter(lambda raw: not _is_address(_kept(raw)))
line = st.one_of(st.sampled_from(GOOD).map(lambda s: Line(s.encode(), True)), bad_line.map(lambda b: Line(b, False)))


@given(
    lines=st.lists(line, max_size=12),
    bom=st.booleans(),
    crlf=st.booleans(),
    final=st.booleans(),
    stdin=st.booleans(),
)
def test_every_good_line_is_answered_in_order_and_every_bad_one_reported(
    fuzz_env: dict[str, str], scratch: Path, lines: list[Line], bom: bool, crlf: bool, final: bool, stdin: bool
) -> None:
    data = file_bytes(lines, bom=bom, crlf=crlf, final_newline=final)
    if stdin:
        where = "stdin"
        r = run_cli(["ip", "--file", "-", "--json", "-q"], fuzz_env, stdin=data, reader="ip --file -")
    else:
        path = write(scratch, "ips.txt", data)
        where = str(path)
        r = run_cli(["ip", "--file", str(path), "--json", "-q"], fuzz_env, reader="ip --file")
    items = [(n, ln) for n, ln in enumerate(lines, 1) if _kept(ln.raw)]
    if not items:
        assert r.code == 3, r  # nothing to look up: said in one line, non-zero
        assert "geowarden: error:" in r.stderr
        return
    doc = json.loads(r.stdout)
    assert len(doc) == len(items)
    for (n, ln), answer in zip(items, doc, strict=True):
        if ln.good:
            assert "error" not in answer, (n, answer)
            assert answer["ip"] == str(ipaddress.ip_address(_kept(ln.raw)).compressed) or answer["ip"] == _kept(ln.raw)
        else:
            assert "error" in answer
    bad = {n for n, ln in items if not ln.good}
    assert r.code == (3 if bad else 0), r.stderr
    assert reported_lines(r.stderr, where) == bad


@given(args=st.lists(st.one_of(st.sampled_from(GOOD[:5]), junk_text), max_size=6))
def test_arguments(fuzz_env: dict[str, str], args: list[str]) -> None:
    r = run_cli(["ip", "--json", "-q", "--", *args], fuzz_env, reader="ip ARGS")
    if not args:
        assert r.code == 2
        return
    doc = json.loads(r.stdout)
    assert len(doc) == len(args)
    bad = [i for i, a in enumerate(args) if not _is_address(a.strip())]
    assert [i for i, d in enumerate(doc) if "error" in d] == bad
    assert r.code == (3 if bad else 0)
