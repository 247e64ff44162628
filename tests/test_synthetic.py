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
    with pytest.raises(ConfigError, match="limited to"):  # before 745 GiB are asked for
        SyntheticConfig(n_users=10**11, n_items=10**11, n_ratings=10**12)


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


@pytest.mark.parametrize("decay", [0.0, 2.0])
def test_the_taste_has_the_signals_variance_and_its_first_dimensions_carry_most(decay):
    cfg = SyntheticConfig(n_users=4000, n_items=3000, n_ratings=40_000, signal=1.2, decay=decay, seed=4)
    t = generate(cfg).truth
    rng = np.random.default_rng(0)
    u, i = rng.integers(0, cfg.n_users, 200_000), rng.integers(0, cfg.n_items, 200_000)
    terms = t.p[u] * t.q[i]  # (pairs, rank): each dimension's part of p_u . q_i
    assert terms.sum(1).std() == pytest.approx(cfg.signal, rel=0.05)
    share = terms.var(0) / terms.var(0).sum()
    if decay == 0:
        np.testing.assert_allclose(share, 1 / cfg.rank, rtol=0.15)
    else:  # k ** -2: the first of 8 dimensions carries 0.65 of the variance
        assert share[0] > 0.55 and np.all(np.diff(share) < 0.01)


def test_the_default_data_rewards_a_factor_model_trained_by_gradient_steps():
    # As on ml-latest-small, where mf gains 0.02 over the biases; with every dimension
    # alike (decay 0, the old default) it gained 0.0003 here.
    from movierec import fitting, pipeline
    from movierec.evaluation import evaluate

    parts = pipeline.split(generate(SyntheticConfig(n_users=1000, n_items=800, n_ratings=80_000)).ratings)
    base, mf = (
        evaluate(fitting.fit(parts.fit, parts.val, m, ranker="popular")[0], parts.test)["rmse"]
        for m in ("baseline", "mf")
    )
    assert mf < base - 0.008
