"""``geowarden indicators import BUNDLE``: a peer's STIX bundle, damaged. The rule: records and
exit 0, or one line and exit 2 or 3 (the README's table), never an internal error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fuzz.fuzzkit import costly, junk_bytes, junk_text, run_cli
from geowarden.sharing.stix import export_bundle

FINDINGS = [
    {"kind": "infrastructure", "subject": "AS64500", "score": 0.9, "members": [], "evidence": {"accounts": 40}},
    {"kind": "infrastructure", "subject": "203.0.113.0/24", "score": 0.5, "members": [], "evidence": {}},
]
BUNDLE: dict[str, Any] = json.loads(export_bundle(FINDINGS, producer="Peer", tlp="amber", valid_days=10)[0].serialize())

#: Values that stand in for any field of the bundle or of one of its objects.
odd_value = st.one_of(
    junk_text,
    st.sampled_from([None, 0, -1, 1e309, float("nan"), True, [], {}, "", "x" * 5000, "[ipv4-addr:value = 'x']",
                     "[autonomous-system:number = -5]", "2999-01-01T00:00:00Z", "1900-01-01T00:00:00Z",
                     {"type": "bundle"}, ["a", {"b": None}]]),
)  # fmt: skip


@st.composite
def damaged_bundle(draw: st.DrawFn) -> bytes:
    doc: dict[str, Any] = json.loads(json.dumps(BUNDLE))
    for _ in range(draw(st.integers(1, 3))):
        objects = doc.get("objects") if isinstance(doc.get("objects"), list) else []
        target = draw(st.sampled_from([doc, *[o for o in objects if isinstance(o, dict)]]))
        keys = sorted(target) or ["type"]
        key = draw(st.one_of(st.sampled_from(keys), junk_text))
        if draw(st.booleans()) and key in target:
            del target[key]
        else:
            target[key] = draw(odd_value)
    text = json.dumps(doc, allow_nan=True).encode()
    return draw(
        st.one_of(
            st.just(text),
            st.just(text[: draw(st.integers(0, len(text)))]),  # truncated
            junk_bytes,
            st.just(b"[" * 5000 + b"]" * 5000),  # deeply nested
            st.just(b"\xef\xbb\xbf" + text),  # a byte-order mark
        )
    )


@costly()
@given(data=damaged_bundle())
def test_a_damaged_bundle_gives_records_or_one_line(fuzz_env: dict[str, str], scratch: Path, data: bytes) -> None:
    path = scratch / "bundle.json"
    path.write_bytes(data)
    r = run_cli(
        ["indicators", "import", str(path), "--peer", "peer-a", "--out", str(scratch / "out.json"), "--json"],
        fuzz_env,
        reader="indicators import",
    )
    if r.code == 0:
        doc = json.loads(r.stdout)
        assert doc["peer"] == "peer-a" and doc["indicators"] >= 0
    else:
        assert r.code in (2, 3) and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r


def test_the_undamaged_bundle_imports_both_indicators(fuzz_env: dict[str, str], scratch: Path) -> None:
    path = scratch / "bundle.json"
    path.write_text(json.dumps(BUNDLE))
    r = run_cli(["indicators", "import", str(path), "--peer", "peer-a", "--out", str(scratch / "o.json"), "--json"],
                fuzz_env)  # fmt: skip
    assert r.code == 0 and json.loads(r.stdout)["indicators"] == 2, r
