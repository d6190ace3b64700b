from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geowarden.errors import SourceError
from geowarden.intel.build import build_snapshot, flatten
from geowarden.intel.snapshot import Snapshot
from geowarden.intel.sources.base import SourceKind
from helpers import source

ranges = st.lists(st.tuples(st.integers(0, 60), st.integers(1, 20)), min_size=1, max_size=12)


@given(ranges)
def test_flatten_gives_disjoint_ranges_where_the_innermost_wins(spans: list[tuple[int, int]]) -> None:
    # Only properly nested or disjoint ranges have a single "innermost" answer; build them so.
    s = np.array([a for a, _ in spans], dtype=np.int64)
    e = s + np.array([n for _, n in spans], dtype=np.int64)
    v = np.arange(len(s), dtype=np.int64)
    fs, fe, fv = flatten(s, e, v)
    assert (fs[1:] >= fe[:-1]).all(), "output must be disjoint and sorted"
    covered = set()
    for a, b in zip(s.tolist(), e.tolist(), strict=True):
        covered.update(range(a, b))
    out = {}
    for a, b, val in zip(fs.tolist(), fe.tolist(), fv.tolist(), strict=True):
        for x in range(a, b):
            out[x] = val
    assert set(out) == covered, "flattening must neither lose nor invent coverage"
    for x, val in out.items():
        holders = [i for i in range(len(s)) if s[i] <= x < e[i]]
        assert val in holders
        # The answer comes from a range that starts no earlier than every other holder.
        assert s[val] == max(s[i] for i in holders)


def test_nested_ranges_answer_with_the_innermost(tiny_snapshot: Snapshot) -> None:
    assert tiny_snapshot.lookup("5.3.2.1").provider == "Amazon AWS"
    assert tiny_snapshot.lookup("5.3.1.1").provider == "AWS eu"


def test_a_geofeed_overrides_the_vote_and_disagreement_is_kept(tiny_snapshot: Snapshot) -> None:
    rec = tiny_snapshot.lookup("5.5.5.5")
    assert rec.country == "FR"
    assert rec.disagreement
    assert rec.sources["country"] == {"dbip-country": "DE", "geofeed": "FR"}


def test_majority_beats_a_single_geolocation_answer(tiny_snapshot: Snapshot) -> None:
    rec = tiny_snapshot.lookup("6.6.6.6")
    assert rec.country == "SG"
    assert rec.disagreement
    assert rec.sources["country"]["dbip-country"] == "CN"


def test_asn_labels_apply_through_the_asn_column(tiny_snapshot: Snapshot) -> None:
    rec = tiny_snapshot.lookup("5.6.7.8")
    assert (rec.asn, rec.hosting, rec.provider) == (64500, True, "Example Cloud")
    assert rec.sources["labels"] == {"hosting": ["x4bnet-hosting-asn"]}


def test_duplicate_or_empty_sources_are_refused(tmp_path: Path) -> None:
    a = source("aws", SourceKind.LABEL, [("1.0.0.0/8", ("hosting", "x"))])
    with pytest.raises(SourceError, match="duplicate"):
        build_snapshot([a, a], tmp_path)
    with pytest.raises(SourceError, match="no usable source"):
        build_snapshot([source("aws", SourceKind.LABEL, [])], tmp_path)


def test_unknown_label_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="unknown label"):
        build_snapshot([source("odd", SourceKind.LABEL, [("1.0.0.0/8", ("residential", "x"))])], tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".building")]


def test_identical_input_gives_the_same_snapshot_id(tmp_path: Path) -> None:
    src = [source("dbip-country", SourceKind.COUNTRY, [("1.0.0.0/8", "AU")])]
    first = build_snapshot(src, tmp_path)
    assert build_snapshot(src, tmp_path) == first
    other = build_snapshot([source("dbip-country", SourceKind.COUNTRY, [("1.0.0.0/8", "NZ")])], tmp_path)
    assert other != first
