"""Metrics: hand-computed cases, and properties that must hold for any input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from movierec import metrics


def test_rmse_and_mae_by_hand():
    assert metrics.rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert metrics.mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        metrics.rmse([1, 2], [1])


# ranked [1, 2, 3, 4, 5], relevant {2, 4, 9}: hits at ranks 2 and 4.
RANKED, RELEVANT = [1, 2, 3, 4, 5], [2, 4, 9]


def test_precision_recall_hit_by_hand():
    assert metrics.precision_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 5)
    assert metrics.precision_at_k(RANKED, RELEVANT, 3) == pytest.approx(1 / 3)
    assert metrics.recall_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 3)
    assert metrics.recall_at_k(RANKED, RELEVANT, 1) == 0.0
    assert metrics.hit_rate_at_k(RANKED, RELEVANT, 1) == 0.0
    assert metrics.hit_rate_at_k(RANKED, RELEVANT, 2) == 1.0


def test_ndcg_by_hand():
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics.ndcg_at_k(RANKED, RELEVANT, 5) == pytest.approx(dcg / idcg)
    # At k=2 the ideal list holds two relevant items, so IDCG has two terms.
    assert metrics.ndcg_at_k(RANKED, RELEVANT, 2) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))


def test_average_precision_by_hand():
    # P@2 = 1/2 at the first hit, P@4 = 2/4 at the second; divided by min(5, 3) = 3.
    assert metrics.average_precision_at_k(RANKED, RELEVANT, 5) == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert metrics.average_precision_at_k([2, 4, 9], RELEVANT, 3) == pytest.approx(1.0)
    assert metrics.map_at_k([RANKED, [9]], [RELEVANT, [9]], 5) == pytest.approx(((1 / 2 + 2 / 4) / 3 + 1) / 2)


def test_no_relevant_items_is_undefined_not_zero():
    assert math.isnan(metrics.recall_at_k([1, 2], [], 2))
    assert math.isnan(metrics.ndcg_at_k([1, 2], [], 2))
    assert math.isnan(metrics.average_precision_at_k([1, 2], [], 2))
    assert metrics.precision_at_k([1, 2], [], 2) == 0.0
    with pytest.raises(ValueError, match="no user has a relevant item"):
        metrics.map_at_k([[1]], [[]], 1)


def test_short_list_counts_missing_positions_as_misses():
    assert metrics.precision_at_k([2], [2], 4) == pytest.approx(1 / 4)
    assert metrics.ndcg_at_k([2], [2], 4) == pytest.approx(1.0)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="repeats"):
        metrics.precision_at_k([1, 1, 2], [1], 3)
    with pytest.raises(ValueError, match="k must be"):
        metrics.ndcg_at_k([1], [1], 0)


def test_catalogue_coverage():
    assert metrics.catalogue_coverage([[1, 2], [2, 3]], 10) == pytest.approx(0.3)
    assert metrics.catalogue_coverage(np.array([[1, 2], [2, -1]]), 4) == pytest.approx(0.5)
    assert metrics.catalogue_coverage([[1, 2, 3], [4, 5, 6]], 6, k=1) == pytest.approx(2 / 6)
    assert metrics.catalogue_coverage([], 5) == 0.0


def test_ranking_metrics_skips_users_without_relevant_items():
    hits = np.array([[False, True], [False, False], [True, False]])
    out = metrics.ranking_metrics(hits, np.array([1, 0, 3]))
    assert out["n_users"] == 2
    assert out["hit_rate"] == 1.0
    assert out["precision"] == pytest.approx(0.5)
    assert out["recall"] == pytest.approx((1 + 1 / 3) / 2)


ranked_lists = st.lists(st.integers(0, 30), min_size=0, max_size=15, unique=True)
relevant_sets = st.lists(st.integers(0, 30), min_size=0, max_size=10, unique=True)


@given(ranked_lists, relevant_sets, st.integers(1, 20))
def test_per_user_metrics_agree_with_the_batch_formulas(ranked, relevant, k):
    hits = metrics.hits_at_k(ranked, relevant, k)
    batch_in = (hits[None], np.array([len(relevant)]))
    if relevant:
        out = metrics.ranking_metrics(*batch_in)
        assert out["precision"] == pytest.approx(metrics.precision_at_k(ranked, relevant, k))
        assert out["recall"] == pytest.approx(metrics.recall_at_k(ranked, relevant, k))
        assert out["ndcg"] == pytest.approx(metrics.ndcg_at_k(ranked, relevant, k))
        assert out["map"] == pytest.approx(metrics.average_precision_at_k(ranked, relevant, k))
        assert out["hit_rate"] == metrics.hit_rate_at_k(ranked, relevant, k)


@given(ranked_lists, relevant_sets, st.integers(1, 20))
def test_metrics_lie_in_unit_interval_and_relate(ranked, relevant, k):
    p = metrics.precision_at_k(ranked, relevant, k)
    assert 0.0 <= p <= 1.0
    n_hits = int(metrics.hits_at_k(ranked, relevant, k).sum())
    assert p * k == pytest.approx(n_hits)
    if relevant:
        r = metrics.recall_at_k(ranked, relevant, k)
        assert r * len(relevant) == pytest.approx(n_hits)
        for value in (r, metrics.ndcg_at_k(ranked, relevant, k), metrics.average_precision_at_k(ranked, relevant, k)):
            assert 0.0 <= value <= 1.0 + 1e-12
        assert (metrics.hit_rate_at_k(ranked, relevant, k) == 1.0) == (n_hits > 0)


@given(relevant_sets.filter(bool), st.lists(st.integers(100, 130), max_size=10, unique=True), st.integers(1, 20))
def test_relevant_items_first_is_a_perfect_ranking(relevant, others, k):
    ranked = relevant + others
    assert metrics.ndcg_at_k(ranked, relevant, k) == pytest.approx(1.0)
    assert metrics.average_precision_at_k(ranked, relevant, k) == pytest.approx(1.0)
    assert metrics.recall_at_k(ranked, relevant, k) == pytest.approx(min(k, len(relevant)) / len(relevant))


@given(relevant_sets.filter(bool), st.lists(st.integers(100, 130), min_size=1, max_size=10, unique=True))
def test_moving_a_hit_down_never_raises_ndcg(relevant, others):
    k = len(relevant) + len(others)
    best = relevant + others
    worse = others + relevant
    assert metrics.ndcg_at_k(worse, relevant, k) <= metrics.ndcg_at_k(best, relevant, k) + 1e-12
    assert metrics.average_precision_at_k(worse, relevant, k) <= metrics.average_precision_at_k(best, relevant, k)
