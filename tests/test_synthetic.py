"""The synthetic generator: deterministic, MovieLens-shaped, and honest about its floor."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.data.synthetic import STARS, SyntheticConfig, generate
from movierec.errors import ConfigError
from movierec.metrics import rmse


def test_same_seed_same_log_and_different_seed_differs():
    cfg = SyntheticConfig(n_users=200, n_items=100, n_ratings=3000, seed=1)
    a, b = generate(cfg), generate(cfg)
    np.testing.assert_array_equal(a.ratings.rating, b.ratings.rating)
    np.testing.assert_array_equal(a.ratings.user_idx, b.ratings.user_idx)
    c = generate(SyntheticConfig(n_users=200, n_items=100, n_ratings=3000, seed=2))
    assert not np.array_equal(a.ratings.rating, c.ratings.rating)


def test_shape_half_stars_and_distinct_pairs(small):
    r = small.ratings
    assert len(r) == small.config.n_ratings
    assert set(np.unique(r.rating)) <= set(STARS.tolist())
    keys = r.user_idx.astype(np.int64) * r.n_items + r.item_idx
    assert len(np.unique(keys)) == len(r)
    assert r.n_users == small.config.n_users  # every user rates something


def test_activity_and_popularity_are_skewed(small):
    per_user = np.bincount(small.ratings.user_idx)
    per_item = np.bincount(small.ratings.item_idx)
    assert per_user.max() > 5 * np.median(per_user)
    assert per_item.max() > 5 * np.median(per_item)


def test_noise_floor_is_the_rmse_of_the_ideal_predictor(small):
    # The conditional mean is the best predictor, and its RMSE matches the reported floor.
    achieved = rmse(small.ratings.rating, small.expected)
    assert achieved == pytest.approx(small.noise_floor(), rel=0.02)
    # Any other predictor, e.g. the conditional mean shifted, does worse.
    assert rmse(small.ratings.rating, small.expected + 0.1) > small.noise_floor()


def test_no_noise_means_a_zero_floor():
    syn = generate(SyntheticConfig(n_users=50, n_items=40, n_ratings=500, noise=0.0))
    assert syn.noise_floor() == 0.0
    np.testing.assert_allclose(syn.expected, syn.ratings.rating)


def test_impossible_sizes_are_refused():
    with pytest.raises(ConfigError, match="over half"):
        SyntheticConfig(n_users=10, n_items=10, n_ratings=80)


def test_exposure_makes_users_rate_what_they_would_like():
    # With exposure, the pairs drawn are those of higher taste than pairs drawn by popularity alone.
    cfg = SyntheticConfig(n_users=400, n_items=300, n_ratings=12_000, seed=5)
    chosen = generate(cfg)
    blind = generate(SyntheticConfig(n_users=400, n_items=300, n_ratings=12_000, seed=5, exposure=0.0))

    def mean_taste(syn):
        r, t = syn.ratings, syn.truth
        return float(t.taste(r.index.user_ids[r.user_idx] - 1, r.index.item_ids[r.item_idx] - 1).mean())

    assert mean_taste(chosen) > mean_taste(blind) + 0.2
    assert chosen.ratings.rating.mean() > blind.ratings.rating.mean()


def test_the_oracle_list_beats_popularity_and_is_near_perfect_without_noise():
    from movierec import fitting, pipeline

    syn = generate(SyntheticConfig(n_users=400, n_items=300, n_ratings=12_000, seed=6))
    parts = pipeline.split(syn.ratings)
    report = syn.report(parts.train_rows, parts.test_rows)
    assert 0 < report["oracle_ndcg"] <= 1 and report["noise_floor"] == pytest.approx(syn.noise_floor(parts.test_rows))
    rec, _ = fitting.fit(parts.fit, parts.val, None, ranker="popular")
    from movierec.evaluation import evaluate_ranking

    assert report["oracle_ndcg"] > evaluate_ranking(rec, parts.test)["ndcg"]
