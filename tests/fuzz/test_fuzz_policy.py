"""``policy check | test | backtest`` and ``eval``: damaged policy files, cases, logs and labels."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import geowarden.policy
from fuzz.fuzzkit import LONG_LINE, costly, file_bytes, junk_bytes, run_cli, write
from fuzz.logs import LogLine, log_line

POLICY_DIR = Path(geowarden.policy.__file__).parent
POLICY = (POLICY_DIR / "default.yaml").read_bytes()
CASES = (POLICY_DIR / "default.tests.yaml").read_bytes()


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with a few lines replaced, duplicated, cut or swapped for damaged bytes."""
    lines = original.split(b"\n")
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["junk", "dup", "cut", "drop", "long", "nest", "value"]))
        if action == "junk":
            lines[i] = draw(junk_bytes)
        elif action == "dup":
            lines.insert(i, lines[i])
        elif action == "cut":
            lines[i] = lines[i][: draw(st.integers(0, max(0, len(lines[i]))))]
        elif action == "drop":
            del lines[i]
        elif action == "long":
            lines[i] = lines[i] + LONG_LINE.encode()
        elif action == "nest":
            lines[i] = b"x: " + b"[" * 2000 + b"]" * 2000
        else:
            head = lines[i].split(b":", 1)[0]
            lines[i] = (
                head
                + b": "
                + draw(
                    st.sampled_from(
                        [b".nan", b"1e309", b"-5", b"{a: [}", b"!!python/object x", b"~", b"*alias", b"&a [*a]"]
                    )
                )
            )
        if not lines:
            lines = [b""]
    return b"\n".join(lines)


@given(text=mutated(POLICY), bom=st.booleans())
def test_policy_check(fuzz_env: dict[str, str], scratch: Path, text: bytes, bom: bool) -> None:
    path = write(scratch, "policy.yaml", (b"\xef\xbb\xbf" if bom else b"") + text)
    r = run_cli(["policy", "check", str(path), "--json"], fuzz_env, reader="policy check")
    assert r.code in (0, 2), r
    if r.code:
        assert r.stdout == "" and r.stderr.strip(), r
    else:
        assert json.loads(r.stdout)["ok"] is True


@costly()
@given(cases=mutated(CASES))
def test_policy_test(fuzz_env: dict[str, str], scratch: Path, cases: bytes) -> None:
    policy = write(scratch, "p.yaml", POLICY)
    path = write(scratch, "p.cases.yaml", cases)
    r = run_cli(["policy", "test", str(policy), "--cases", str(path), "--json", "-q"], fuzz_env, reader="policy test")
    assert r.code in (0, 1, 2, 3), r
    if r.code in (2, 3):
        assert r.stdout == "" and r.stderr.strip(), r


def _check_rows(code: int, stderr: str, read: int, skipped: int, lines: list[LogLine], where: str) -> None:
    rows = [(n, ln) for n, ln in enumerate(lines, 1) if ln.is_row]
    assert read == len(rows)
    bad = {n for n, ln in rows if ln.good is False}
    for n in bad:
        assert f"{where} line {n}:" in stderr or skipped > 20
    assert skipped >= len(bad)
    assert read - skipped >= sum(1 for _, ln in rows if ln.good)
    if read - skipped == 0:
        assert code == 3 and "no usable events" in stderr
    else:
        assert code == (3 if skipped else 0), stderr


@costly()
@given(lines=st.lists(log_line, max_size=8), crlf=st.booleans(), bom=st.booleans())
def test_policy_backtest(fuzz_env: dict[str, str], scratch: Path, lines: list[LogLine], crlf: bool, bom: bool) -> None:
    logs = write(scratch, "bt.jsonl", file_bytes(lines, bom=bom, crlf=crlf, final_newline=True))
    policy = write(scratch, "candidate.yaml", POLICY)
    r = run_cli(
        ["policy", "backtest", str(logs), "--policy", str(policy), "--json", "-q"], fuzz_env, reader="policy backtest"
    )
    doc = json.loads(r.stdout)
    _check_rows(r.code, r.stderr, doc["events"] + doc["skipped"], doc["skipped"], lines, str(logs))


LABELS = [
    b'{"subject": "a1", "kind": "account", "persona": "honest", "should_allow": true}',
    b'{"subject": "k1", "kind": "key", "persona": "reseller", "should_allow": false}',
]


@costly()
@given(
    lines=st.lists(log_line, max_size=8),
    labels=st.lists(st.one_of(st.sampled_from(LABELS), junk_bytes, st.just(b"[" * 5000)), min_size=1, max_size=4),
)
def test_eval(fuzz_env: dict[str, str], scratch: Path, lines: list[LogLine], labels: list[bytes]) -> None:
    logs = write(scratch, "ev.jsonl", file_bytes(lines, bom=False, crlf=False, final_newline=True))
    lab = write(scratch, "labels.jsonl", b"\n".join(labels))
    r = run_cli(["eval", str(logs), "--labels", str(lab), "--json", "-q"], fuzz_env, reader="eval")
    if not r.stdout:  # the labels file is refused: one line naming it
        assert r.code in (2, 3) and str(lab) in r.stderr and len(r.stderr.strip().splitlines()) == 1, r
        return
    doc = json.loads(r.stdout)
    _check_rows(r.code, r.stderr, doc["events"], doc["skipped"], lines, str(logs))
