from __future__ import annotations

import pytest

from geowarden.screening.ownership import OwnershipGraph


def test_direct_51_percent_is_blocked() -> None:
    g = OwnershipGraph()
    g.mark("Owner", "listed: OFAC SDN ofac-sdn:1")
    g.add("Target", "Owner", 51, "registry")
    a = g.assess("Target")
    assert a.blocked and a.blocked_share == 51 and a.look_through == pytest.approx(51)
    assert a.chains == [["Target", "Owner (51%, registry)", "listed: OFAC SDN ofac-sdn:1"]]


def test_indirect_60_times_90() -> None:
    g = OwnershipGraph()
    g.mark("A", "restricted jurisdiction RU")
    g.add("B", "A", 60)
    g.add("C", "B", 90)
    a = g.assess("C")
    # B is blocked (60 % >= 50 %), so its whole 90 % stake counts under the 50 % rule;
    # the economic look-through share is 60 % x 90 % = 54 %.
    assert a.blocked and a.blocked_share == 90
    assert a.look_through == pytest.approx(54)
    assert a.chains == [["C", "B (90%)", "A (60%)", "restricted jurisdiction RU"]]


def test_two_30_percent_blocked_owners_aggregate_to_60() -> None:
    g = OwnershipGraph()
    g.mark("X", "listed")
    g.mark("Y", "listed")
    g.add("T", "X", 30)
    g.add("T", "Y", 30)
    g.add("T", "Clean", 40)
    a = g.assess("T")
    assert a.blocked and a.blocked_share == 60 and len(a.chains) == 2


def test_below_threshold_is_not_blocked() -> None:
    g = OwnershipGraph()
    g.mark("X", "listed")
    g.add("T", "X", 49.9)
    a = g.assess("T")
    assert not a.blocked and a.blocked_share == pytest.approx(49.9)


def test_cycle_is_reported_not_fatal() -> None:
    g = OwnershipGraph()
    g.mark("R", "listed")
    g.add("T", "A", 100)
    g.add("A", "B", 50)
    g.add("B", "A", 50)  # A and B own each other
    g.add("A", "R", 50)
    a = g.assess("T")
    assert a.cycles and a.cycles[0][0] == a.cycles[0][-1]
    assert a.blocked and a.blocked_share == 100  # A is 50 % owned by R, so blocked


def test_missing_percentage_is_reported_with_upper_bound() -> None:
    g = OwnershipGraph()
    g.mark("R", "listed")
    g.add("T", "R", None)
    g.add("T", "Clean", 40)
    a = g.assess("T")
    assert not a.blocked and a.blocked_share == 0
    assert a.blocked_share_max == 60  # what the known 40 % leaves
    assert [(s.owner, s.owned) for s in a.unknown] == [("R", "T")]


def test_bad_percentage_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        OwnershipGraph().add("T", "X", 120)
