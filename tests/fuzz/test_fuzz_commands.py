"""``check``, ``screen``, ``verify-location`` and ``allow verify``: damaged arguments and files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.fuzzkit import LONG_LINE, Line, file_bytes, junk_bytes, junk_text, reported_lines, run_cli, write

value = st.one_of(
    junk_text, st.sampled_from(["", " ", "DE", "+8613800138000", "622202", "4111111111111111", LONG_LINE])
)


@given(
    opts=st.dictionaries(
        st.sampled_from(
            ["--ip", "--phone", "--card-bin", "--billing-country", "--accept-language", "--timezone", "--email",
             "--org", "--account", "--api-key", "--allow-token"]
        ),
        value,
        max_size=4,
    )
)  # fmt: skip
def test_check(fuzz_env: dict[str, str], opts: dict[str, str]) -> None:
    args = [x for k, v in opts.items() for x in (f"{k}={v}",)]
    r = run_cli(["check", *args, "--json", "-q"], fuzz_env, reader="check")
    assert r.code in (0, 2, 3), r
    if r.code == 0:
        assert json.loads(r.stdout)["action"] in {"allow", "limited", "challenge", "review", "block"}
    else:
        assert r.stdout == "" and r.stderr.strip(), r


SDN = (
    b'306,"BANCO NACIONAL DE CUBA",-0- ,"CUBA",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,"a.k.a. \'BNC\'."\n'
    b'7001,"ROSNEFT TRADING",-0- ,"UKRAINE-EO13662",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \n'
)
NAMES = ["Banco Nacional de Cuba", "Rosneft Trading", "Acme Widgets GmbH", "БАНКО НАСЬОНАЛЬ"]


@pytest.fixture(scope="module")
def sanctions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sanctions")
    (root / "ofac").mkdir()
    (root / "ofac" / "sdn.csv").write_bytes(SDN)
    return root


@given(
    lines=st.lists(
        st.one_of(
            st.sampled_from(NAMES).map(lambda s: Line(s.encode(), True)), junk_bytes.map(lambda b: Line(b, False))
        ),
        max_size=8,
    ),
    crlf=st.booleans(),
    bom=st.booleans(),
)
def test_screen_file(
    fuzz_env: dict[str, str], scratch: Path, sanctions: Path, lines: list[Line], crlf: bool, bom: bool
) -> None:
    path = write(scratch, "names.txt", file_bytes(lines, bom=bom, crlf=crlf, final_newline=True))
    r = run_cli(["screen", "--file", str(path), "--data", str(sanctions), "--json"], fuzz_env, reader="screen --file")
    # A line holding only byte-order marks is blank to the reader (U+FEFF is not a name).
    kept = [ln for ln in lines if ln.raw.decode("utf-8", "replace").split("#", 1)[0].replace("\ufeff", "").strip()]
    if not kept:
        assert r.code != 0 and r.stderr.strip()
        return
    assert r.code in (0, 3), r
    doc = json.loads(r.stdout)
    assert len(doc) == len(kept)  # one answer per name, in input order
    # exit 3 exactly when a name could not be screened (reported as its problem, the rest answered)
    assert (r.code == 3) == any(item.get("problem") for item in doc), r
    for ln, item in zip(kept, doc, strict=True):
        if ln.raw in (b"Banco Nacional de Cuba", b"Rosneft Trading"):
            assert item["matches"], ln


@given(names=st.lists(value, min_size=1, max_size=4), country=st.one_of(st.none(), value))
def test_screen_arguments(fuzz_env: dict[str, str], sanctions: Path, names: list[str], country: str | None) -> None:
    extra = [f"--country={country}"] if country is not None else []
    r = run_cli(["screen", *extra, "--data", str(sanctions), "--json", "--", *names], fuzz_env, reader="screen ARGS")
    assert r.code in (0, 2, 3), r
    if r.code == 0:
        assert len(json.loads(r.stdout)) == len(names)


@given(rows=st.lists(st.one_of(st.sampled_from(SDN.splitlines()), junk_bytes, st.just(b'"unclosed,quote')), max_size=6))
def test_screening_list_reader(
    fuzz_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, rows: list[bytes]
) -> None:
    root = tmp_path_factory.mktemp("lists")
    (root / "ofac").mkdir()
    (root / "ofac" / "sdn.csv").write_bytes(b"\n".join(rows))
    r = run_cli(
        ["screen", "Banco Nacional de Cuba", "--data", str(root), "--json"],
        fuzz_env,
        reader="screening lists (sdn.csv)",
    )
    assert r.code in (0, 2, 3, 4), r
    if r.code:
        assert r.stdout == "" and len(r.stderr.strip().splitlines()) >= 1


CLAIMS_GOOD = [
    b'{"claimed": "DE", "rtt": [[52.5, 13.4, 5]]}',
    b'{"claimed": [48.85, 2.35], "rtt": [[52.5, 13.4, 9.5], [40.4, -3.7, 20]]}',
]
CLAIMS_EITHER = [b'{"claimed": "DE", "rtt": []}', b'{"claimed": "DE"}']  # inconclusive, or refused
CLAIMS_BAD = [
    b'{"claimed": [1e309, 5], "rtt": [[52.5, 13.4, 5]]}',
    b'{"claimed": "DE", "rtt": [[52.5, 13.4, -5]]}',
    b'{"claimed": "DE", "rtt": [[NaN, 13.4, 5]]}',
    b'{"claimed": "DE", "rtt": [[95, 13.4, 5]]}',
    b'{"claimed": "XX", "rtt": [[52.5, 13.4, 5]]}',  # no such country
    b'{"claimed": 7, "rtt": [[52.5, 13.4, 5]]}',
    b'{"claimed": "DE", "rtt": [[52.5, 13.4, "5"]]}',
    b'{"claimed": "DE", "rtt": [[52.5, 13.4]]}',
    b'{"claimed": "DE", "rtt": {"a": 1}}',
    b"[1, 2]",
    b'{"claimed": "DE", "rtt": [[52.5, 13.4, 5]]',
    b'{"claimed": "DE", "rtt": ' + b"[" * 3000 + b"]" * 3000 + b"}",
]


@given(
    lines=st.lists(
        st.one_of(
            st.sampled_from(CLAIMS_GOOD).map(lambda b: Line(b, True)),
            st.sampled_from(CLAIMS_BAD).map(lambda b: Line(b, False)),
            st.sampled_from(CLAIMS_EITHER).map(lambda b: Line(b, None)),
            junk_bytes.filter(lambda b: b.strip() and not b.lstrip().startswith(b"#")).map(lambda b: Line(b, False)),
        ),
        max_size=8,
    ),
    crlf=st.booleans(),
    bom=st.booleans(),
    stdin=st.booleans(),
)
def test_verify_location_file(
    fuzz_env: dict[str, str], scratch: Path, lines: list[Line], crlf: bool, bom: bool, stdin: bool
) -> None:
    data = file_bytes(lines, bom=bom, crlf=crlf, final_newline=True)
    if stdin:
        where, args = "stdin", ["verify-location", "--file", "-", "--json"]
        r = run_cli(args, fuzz_env, stdin=data, reader="verify-location --file -")
    else:
        path = write(scratch, "claims.jsonl", data)
        where, args = str(path), ["verify-location", "--file", str(path), "--json"]
        r = run_cli(args, fuzz_env, reader="verify-location --file")
    kept = [(n, ln) for n, ln in enumerate(lines, 1) if ln.raw.decode("utf-8", "replace").split("#", 1)[0].strip()]
    bad = {n for n, ln in kept if ln.good is False}
    good = [n for n, ln in kept if ln.good]
    if not kept or not (set(good) | {n for n, ln in kept if ln.good is None}):
        assert r.code == 3 and r.stderr.strip(), r
        return
    doc = json.loads(r.stdout)
    reported = reported_lines(r.stderr, where)
    assert bad <= reported and not reported & set(good)
    assert len(doc) + len(reported) == len(kept)  # every claim answered or reported
    assert r.code == (3 if reported else 0), r


@given(
    claimed=value,
    rtts=st.lists(st.one_of(value, st.sampled_from(["52.5,13.4=5", "1e309,0=1", "0,0=-1", "nan,0=1"])), max_size=3),
)
def test_verify_location_arguments(fuzz_env: dict[str, str], claimed: str, rtts: list[str]) -> None:
    args = ["verify-location", f"--claimed={claimed}", *[f"--rtt={x}" for x in rtts], "--json"]
    r = run_cli(args, fuzz_env, reader="verify-location ARGS")
    assert r.code in (0, 2, 3), r
    if r.code:
        assert r.stdout == "" and r.stderr.strip()


@given(token=st.one_of(value, st.just("gwa_" + "A" * 40), st.text(alphabet="abcXYZ012.-_=", max_size=200)))
def test_allow_verify(fuzz_env: dict[str, str], token: str) -> None:
    r = run_cli(["allow", "verify", "--json", "--", token], fuzz_env, reader="allow verify")
    assert r.code in (1, 2), r
    if r.code == 1:
        assert json.loads(r.stdout) == {"valid": False}
