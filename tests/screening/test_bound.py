"""The vectorised upper bound (screening/bound.py) never falls below the score it stands for."""

from __future__ import annotations

import random

import pytest

from geowarden.screening.match import POSSIBLE, NameIndex, score_tokens
from geowarden.screening.names import normalise

QUERIES = [
    "KIM Jong Un",
    "김정은",
    "Владимир Путин",
    "محمد علي",
    "习近平",
    "Rosneft Oil Company",
    "JSC Rosin.telekom",  # a word near a listed one, a legal form
    "76 TELECOMUNICAÇÃO LTDA",  # digits must agree exactly
    "GHOLIA ZADEH Majid",  # a join: the compact score
    "Bank",
]


def _check(index: NameIndex, name: str) -> int:
    q = normalise(name)
    cands = index.candidates(q)
    weights = [index.token_weight.get(t, index.unseen_weight) for t in q.tokens]
    bounds = index._table.upper_bounds(q, weights, cands)
    for ai, bound in zip(cands, bounds, strict=True):
        score = score_tokens(q, index._alias_norm[ai], index.token_weight, index.unseen_weight).value
        assert score <= bound, (name, index._alias_text[ai], score, bound)
    return len(cands)


@pytest.mark.parametrize("name", QUERIES)
def test_bound_is_never_below_the_score(shared_index: NameIndex, name: str) -> None:
    assert _check(shared_index, name) > 0


def test_bound_holds_on_listed_names_with_a_typo(shared_index: NameIndex) -> None:
    rng = random.Random(3)
    names = rng.sample([e.name for e in shared_index.entities], 150)
    for n in names:
        i = rng.randrange(len(n))
        _check(shared_index, n[:i] + n[i + 1 :])


def test_batch_answers_equal_one_by_one(shared_index: NameIndex) -> None:
    batch = shared_index.search_many(QUERIES, threshold=POSSIBLE)
    single = [shared_index.search(q, threshold=POSSIBLE) for q in QUERIES]
    assert [[(m.entity.entity_id, m.score) for m in ms] for ms in batch] == [
        [(m.entity.entity_id, m.score) for m in ms] for ms in single
    ]
    assert any(batch)
