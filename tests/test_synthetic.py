"""The synthetic generator: deterministic, MovieLens-shaped, and honest about its floor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from movierec.data.splits import random_split
from movierec.data.synthetic import STARS, SyntheticConfig, _star_mean, _star_moments, generate
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


def test_star_mean_is_the_rounded_clipped_mean_and_its_slope():
    latent = np.linspace(-1.0, 6.5, 61)
    mean, slope = _star_mean(torch.from_numpy(latent), 0.7)
    np.testing.assert_allclose(mean.numpy(), _star_moments(latent, 0.7)[0], atol=1e-9)
    h = 1e-5
    up, down = (_star_mean(torch.from_numpy(latent + d), 0.7)[0].numpy() for d in (h, -h))
    np.testing.assert_allclose(slope.numpy(), (up - down) / (2 * h), atol=1e-6)


def test_user_floor_is_the_price_of_learning_users_from_their_ratings():
    # Same items and noise; users with 200 ratings each against users with 20.
    def bounds(n_users: int) -> tuple[float, float, float]:
        syn = generate(SyntheticConfig(n_users=n_users, n_items=400, n_ratings=40_000, rank=4, noise=0.6, seed=3))
        train, test = random_split(len(syn.ratings), 0.2, 0)
        r = syn.ratings
        item_mean = np.bincount(r.item_idx[train], r.rating[train], r.n_items) / np.maximum(
            np.bincount(r.item_idx[train], minlength=r.n_items), 1
        )
        return syn.noise_floor(test), syn.user_floor(train, test), rmse(r.rating[test], item_mean[r.item_idx[test]])

    floor, learned, items_only = bounds(200)
    assert floor < learned < floor * 1.05  # many ratings a user: nearly the floor
    assert learned < items_only
    floor, learned, _ = bounds(2000)
    assert learned > floor * 1.1  # 20 a user: a clear price
