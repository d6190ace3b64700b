"""The simulator's parts for analytics: fingerprints, the timeline, prefixes, account identities."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from geowarden.intel.snapshot import Snapshot
from geowarden.simulate import accounts, prompts, timeline, world
from geowarden.simulate.personas import PERSONAS


def test_flips_change_at_most_three_bits_and_sometimes_none() -> None:
    rng = np.random.default_rng(3)
    base = prompts.random64(rng, 1)[0]
    bits = prompts.hamming(base ^ prompts.flips(rng, 20_000), base)
    assert bits.max() == prompts.MAX_FLIPS and (bits == 0).mean() > 0.2
    assert set(np.unique(bits).tolist()) == {0, 1, 2, 3}


def test_hex_text_matches_python_formatting() -> None:
    values = np.array([0, 1, 2**63, 2**64 - 1, 0x0123456789ABCDEF], dtype=np.uint64)
    text = prompts.hex_strings(values)
    assert text == ["0000000000000000", "0000000000000001", "8000000000000000", "ffffffffffffffff", "0123456789abcdef"]
    assert [bytes(r).decode() for r in prompts.hex_bytes(values)] == text
    assert prompts.arrow_hex(values).to_pylist() == text


def test_fingerprint_mix_follows_the_persona() -> None:
    rng = np.random.default_rng(5)
    world_prompts = prompts.popular(rng)
    templates = prompts.random64(rng, 3)
    ev_acc = rng.integers(0, 50, size=30_000)
    fp = prompts.fingerprints({"campaign": 0.7, "app": 0.3}, ev_acc, 50, 2, rng, world_prompts, templates)
    near = np.min(np.stack([prompts.hamming(fp, t) for t in templates]), axis=0) <= prompts.MAX_FLIPS
    assert abs(near.mean() - 0.7) < 0.02
    apps = fp[~near]
    per_account = {int(a): set() for a in ev_acc[~near].tolist()}
    for a, v in zip(ev_acc[~near].tolist(), apps.tolist(), strict=True):
        per_account[a].add(v)
    assert max(len(v) for v in per_account.values()) <= 2  # an app's fixed prompts, repeated
    honest = prompts.fingerprints({"unique": 1.0}, ev_acc, 50, 2, rng, world_prompts, np.zeros(0, dtype=np.uint64))
    assert len(np.unique(honest)) == len(honest)


def test_warp_keeps_order_and_follows_the_rate() -> None:
    rng = np.random.default_rng(1)
    cum = np.cumsum(rng.exponential(1.0, size=100_000))
    rate = np.ones(1440)
    rate[600:660] = 11.0  # one busy hour carries 11x
    ms, bucket = timeline.warp(cum, rate, 60_000.0)
    assert np.all(np.diff(ms) >= 0) and ms.min() >= 0 and ms.max() < 1440 * 60_000
    assert np.array_equal(bucket, ms // 60_000)
    busy = ((bucket >= 600) & (bucket < 660)).mean()
    assert abs(busy - 660 / (1380 + 660)) < 0.01


def test_assign_draws_entries_by_bucket_weight() -> None:
    rng = np.random.default_rng(2)
    weights = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 3.0]])
    bucket = rng.integers(0, 3, size=60_000)
    entry = timeline.assign(bucket, weights, rng.random(60_000))
    assert set(entry[bucket == 0].tolist()) == {0} and set(entry[bucket == 1].tolist()) == {1}
    assert abs(entry[bucket == 2].mean() - 0.75) < 0.02


def test_pick_accounts_follows_local_hours() -> None:
    rng = np.random.default_rng(4)
    ts = timeline.T0_MS + np.sort(rng.integers(0, timeline.DAY_MS, size=50_000))
    offsets = np.array([8.0, -8.0])  # Shanghai, Los Angeles
    acc = timeline.pick_accounts(rng, ts, np.ones(2), offsets, 1.0)
    utc_hour = (ts % timeline.DAY_MS) // timeline.HOUR_MS
    shanghai_night = (utc_hour >= 17) & (utc_hour < 22)  # 01:00-06:00 in Shanghai, 09:00-14:00 in Los Angeles
    assert (acc[shanghai_night] == 0).mean() < 0.15 and 0.4 < (acc == 0).mean() < 0.6


@pytest.mark.parametrize("seed", range(5))
def test_prefixes_stay_in_few_networks_with_their_labels(tiny_snapshot: Snapshot, seed: int) -> None:
    space = world.AddressSpace.of(tiny_snapshot)
    no = ("vpn", "tor", "proxy", "relay", "reserved")
    ips = space.sample_prefixes(world.Selector(("DE",), (), ("hosting",), no), 2, 500, np.random.default_rng(seed))
    assert len({int(x) >> 8 for x in ips}) <= 2 and len(set(ips.tolist())) > 50
    looked = tiny_snapshot.lookup_many(world.ip_strings(ips))
    assert set(looked.country.tolist()) == {"DE"} and looked.flag("hosting").all()
    assert not space.fallbacks


def test_created_before_first_use_in_bursts_or_spread() -> None:
    rng = np.random.default_rng(6)
    first = timeline.T0_MS + rng.integers(0, 3 * timeline.DAY_MS, size=300)
    farm = dataclasses.replace(PERSONAS["account_farm"], created_bursts=3, burst_minutes=20.0)
    created = accounts.created_times(farm, first, rng)
    assert (created < first).all()
    assert len(np.unique(created // (20 * 60_000))) <= 6  # three bursts (each may straddle a boundary)
    honest = accounts.created_times(PERSONAS["local_residential"], first, rng)
    assert (honest < first).all() and len(np.unique(honest // timeline.DAY_MS)) > 200


def test_shared_cards_keep_bins_in_step() -> None:
    rng = np.random.default_rng(7)
    p = dataclasses.replace(PERSONAS["company_team"], shared_cards=2, shared_card_share=0.5, family_share=0.0)
    phones: list[str | None] = [f"+1555000{i:04d}" for i in range(200)]
    bins: list[str | None] = [f"4{i:05d}" for i in range(200)]
    payment, line = accounts.share_identity(p, phones, bins, rng)
    cards, counts = np.unique(payment, return_counts=True)
    assert (counts > 1).sum() == 2 and counts.max() > 30
    for card in cards[counts > 1]:
        assert len({bins[i] for i in np.flatnonzero(payment == card)}) == 1
    assert len(np.unique(line)) == 200  # nobody shares a phone here


@pytest.mark.parametrize("kind", ["company_team", "distillation"])
def test_new_personas_validate(kind: str) -> None:
    PERSONAS[kind].validate()
