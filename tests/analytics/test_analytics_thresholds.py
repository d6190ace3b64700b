"""Analysis thresholds (analytics/thresholds.py): read one way, every value a finite non-negative
float, a typo or a bad value a ConfigError naming it."""

from __future__ import annotations

import math
from typing import Any

import pytest

from geowarden.analytics.thresholds import BY_ANALYSIS, CampaignThresholds, GraphThresholds, KeyThresholds
from geowarden.errors import ConfigError

BAD = [
    ({"keys": {"min_score": "high"}}, r"analytics\.keys\.min_score must be a non-negative number"),
    ({"keys": {"min_score": True}}, r"analytics\.keys\.min_score"),
    ({"graph": {"min_edge": -0.1}}, r"analytics\.graph\.min_edge"),
    ({"infra": {"floor": math.inf}}, r"analytics\.infra\.floor"),
    ({"campaigns": {"band_z": math.nan}}, r"analytics\.campaigns\.band_z"),
    ({"keys": {"min_scor": 0.6}}, "keys has no threshold min_scor"),
]


@pytest.mark.parametrize(("settings", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_values_are_config_errors(settings: dict[str, dict[str, Any]], message: str) -> None:
    name = next(iter(settings))
    with pytest.raises(ConfigError, match=message):
        BY_ANALYSIS[name].read(settings)


def test_given_over_defaults() -> None:
    t = GraphThresholds.read({"graph": {"min_edge": 1}, "keys": {"min_score": 0.9}})
    assert t.min_edge == 1.0 and isinstance(t.min_edge, float)
    assert t.flag_score == GraphThresholds.defaults()["flag_score"] == 0.5
    assert KeyThresholds.read({}) == KeyThresholds()


def test_defaults_are_floats_and_exposure_is_shared() -> None:
    for cls in BY_ANALYSIS.values():
        assert all(type(v) is float for v in cls.defaults().values()), cls.ANALYSIS
    assert GraphThresholds().leak_share == CampaignThresholds().leak_share
    assert set(BY_ANALYSIS) == {"keys", "infra", "graph", "campaigns", "restricted"}
