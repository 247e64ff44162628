"""als: every half-sweep is the exact ridge solution of mf's objective for its side."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from movierec.errors import ConfigError
from movierec.models import rows
from movierec.models.als import SPEC, ALSConfig, clip_link
from movierec.models.base import RaterData
from movierec.training import run


def ratings(n_users: int, n_items: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distinct random pairs with skewed activity, so blocks hold rows of many different counts."""
    rng = np.random.default_rng(seed)
    weights = rng.pareto(1.5, n_users) + 0.1
    pairs = set()
    while len(pairs) < n:
        pairs.add((int(rng.choice(n_users, p=weights / weights.sum())), int(rng.integers(n_items))))
    users, items = (torch.tensor(c) for c in zip(*sorted(pairs), strict=True))
    return users, items, torch.tensor(rng.normal(size=n), dtype=torch.float32)


def fit(users, items, target, config: ALSConfig, sweeps: int, n_users: int, n_items: int):
    model = SPEC.build(config, n_users, n_items, torch.Generator().manual_seed(0))
    data = RaterData(users, items, target, torch.Generator().manual_seed(1))
    assert SPEC.sweeps is not None
    return model, run(model, SPEC.sweeps(model, config, data), sweeps)


def objective(model, users, items, target, config: ALSConfig) -> torch.Tensor:
    """mf's loss summed over ratings (squared error plus the per-rating penalties), plus the prior."""
    err = target.double() - model(users, items).double()
    p, q = model.user_factors(users).double(), model.item_factors(items).double()
    b = model.user_bias(users)[:, 0].double() ** 2 + model.item_bias(items)[:, 0].double() ** 2
    loss = (err**2).sum() + config.reg * ((p * p).sum() + (q * q).sum()) + config.reg_bias * b.sum()
    # prior_ratings more ratings' worth of penalty on every row that has ratings.
    for rated, factors, bias in (
        (users.unique(), model.user_factors, model.user_bias),
        (items.unique(), model.item_factors, model.item_bias),
    ):
        f, w = factors(rated).double(), bias(rated)[:, 0].double()
        loss = loss + config.prior_ratings * (config.reg * (f * f).sum() + config.reg_bias * (w * w).sum())
    return loss


@pytest.fixture
def small_blocks(monkeypatch):
    # Blocks of at most 64 padded ratings: many blocks, padding in most of them.
    monkeypatch.setattr(rows, "BLOCK_RATINGS", 64)


def test_the_last_half_sweep_leaves_the_item_gradient_at_zero(small_blocks):
    users, items, target = ratings(40, 25, 400, seed=0)
    config = ALSConfig(dim=3, reg=0.1, reg_bias=0.05)
    model, history = fit(users, items, target, config, sweeps=2, n_users=40, n_items=25)
    loss = objective(model, users, items, target, config)
    loss.backward()
    for table in (model.item_factors, model.item_bias):
        grad = table.weight.grad.to_dense() if table.weight.grad.is_sparse else table.weight.grad
        assert float(grad.abs().max()) < 1e-3, "the items' ridge solution should make their gradient vanish"
    # The user side was solved before the items moved, so its gradient is not zero: the test can fail.
    assert float(model.user_factors.weight.grad.to_dense().abs().max()) > 1e-3
    # The reported loss is that same objective per rating.
    assert history[-1].train_loss == pytest.approx(float(loss.detach()) / len(target), rel=1e-4)


def test_sweeps_never_raise_the_objective(small_blocks):
    users, items, target = ratings(60, 30, 700, seed=1)
    _, history = fit(users, items, target, ALSConfig(dim=4, reg=0.05, reg_bias=0.05), 8, 60, 30)
    losses = [h.train_loss for h in history]
    assert len(losses) == 8
    assert all(b <= a * (1 + 1e-5) for a, b in zip(losses, losses[1:], strict=False))
    assert losses[-1] < losses[0]


def test_recovers_a_noiseless_low_rank_matrix():
    rng = np.random.default_rng(2)
    n_users, n_items = 50, 40
    truth = rng.normal(size=(n_users, 2)) @ rng.normal(size=(2, n_items)) + rng.normal(size=(n_users, 1))
    mask = rng.random((n_users, n_items)) < 0.6
    users, items = (torch.tensor(a) for a in np.nonzero(mask))
    target = torch.tensor(truth[mask], dtype=torch.float32)
    config = ALSConfig(dim=2, reg=1e-5, reg_bias=1e-5, init_std=1.0)
    model, _ = fit(users, items, target, config, sweeps=60, n_users=n_users, n_items=n_items)
    unseen = torch.tensor(np.argwhere(~mask))
    with torch.no_grad():
        pred = model(unseen[:, 0], unseen[:, 1]).double().numpy()
    err = pred - truth[~mask]
    assert np.sqrt(np.mean(err**2)) < 0.05 * truth.std()


def test_rows_without_ratings_predict_the_biases_alone():
    users = torch.tensor([0, 0, 1, 1])
    items = torch.tensor([0, 1, 0, 1])
    target = torch.tensor([1.0, -1.0, 0.5, 0.0])
    model, _ = fit(users, items, target, ALSConfig(dim=2), sweeps=3, n_users=3, n_items=4)
    assert torch.all(model.user_factors.weight[2] == 0) and float(model.user_bias.weight.detach()[2]) == 0
    assert torch.all(model.item_factors.weight[2:] == 0) and torch.all(model.item_bias.weight[2:] == 0)


def test_one_glowing_rating_does_not_outrank_a_well_loved_item():
    # Items: 0 loved by 50 users (4.5), 1 middling (3.0 from all), 2 one 5-star rating.
    users = [u for u in range(50) for _ in (0, 1)] + [0, 50]
    items = [i for _ in range(50) for i in (0, 1)] + [2, 1]
    ratings = np.array([4.5 if i == 0 else 3.0 for i in items[:100]] + [5.0, 3.0])
    target = torch.tensor(ratings - ratings.mean(), dtype=torch.float32)
    users_t, items_t = torch.tensor(users), torch.tensor(items)
    for prior, loved_wins in ((25.0, True), (0.0, False)):  # the prior is what makes the difference
        model, _ = fit(users_t, items_t, target, ALSConfig(dim=2, prior_ratings=prior), 10, 51, 3)
        with torch.no_grad():
            loved, glowing = model(torch.tensor([50, 50]), torch.tensor([0, 2])).tolist()
        assert (loved > glowing) == loved_wins


def _low_rank(seed: int, n_users: int = 300, n_items: int = 120, rank: int = 4, density: float = 0.3):
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(n_users, rank)) @ rng.normal(size=(rank, n_items)) * 0.5
    mask = rng.random((n_users, n_items)) < density
    users, items = (torch.tensor(a) for a in np.nonzero(mask))
    noisy = truth[mask] + rng.normal(0.0, 0.3, int(mask.sum()))
    return users, items, torch.tensor(noisy, dtype=torch.float32), n_users, n_items


def test_the_singular_start_is_already_on_the_way_down():
    # From a random start a heavy ridge creeps away from zero; from the top singular
    # vectors the first sweep is most of the way to the converged fit.
    users, items, target, n_users, n_items = _low_rank(3)
    config = ALSConfig(dim=4, reg=0.1, reg_bias=0.1, prior_ratings=5.0)
    _, svd = fit(users, items, target, config, 12, n_users, n_items)
    _, rnd = fit(users, items, target, replace(config, start="random", init_std=0.1), 12, n_users, n_items)
    svd_loss, rnd_loss = [h.train_loss for h in svd], [h.train_loss for h in rnd]
    assert svd_loss[0] < rnd_loss[0]
    assert svd_loss[0] - svd_loss[-1] < 0.2 * (rnd_loss[0] - rnd_loss[-1])
    assert svd_loss[-1] <= rnd_loss[-1] * 1.001


def test_the_singular_start_is_the_same_for_the_same_seed():
    users, items, target, n_users, n_items = _low_rank(4, 80, 50)
    config = ALSConfig(dim=3)
    a, _ = fit(users, items, target, config, 1, n_users, n_items)
    b, _ = fit(users, items, target, config, 1, n_users, n_items)
    torch.testing.assert_close(a.item_factors.weight, b.item_factors.weight, rtol=0, atol=0)


def test_a_bad_start_is_a_clear_error():
    with pytest.raises(ConfigError, match="start must be"):
        ALSConfig(start="zeros")


def test_the_clip_link_is_the_mean_of_a_clipped_normal_and_its_slope():
    z = torch.linspace(-4.0, 4.0, 33, dtype=torch.float64)
    lo, hi, sd = -2.0, 1.5, 0.7
    g, slope = clip_link(z, lo, hi, sd)
    # The mean by quadrature over the noise, and the slope by central differences.
    e = torch.linspace(-8 * sd, 8 * sd, 20001, dtype=torch.float64)
    density = torch.exp(-0.5 * (e / sd) ** 2)
    density /= density.sum()
    expected = ((z[:, None] + e[None, :]).clamp(lo, hi) * density).sum(1)
    torch.testing.assert_close(g, expected, rtol=0, atol=1e-6)
    h = 1e-5
    numeric = (clip_link(z + h, lo, hi, sd)[0] - clip_link(z - h, lo, hi, sd)[0]) / (2 * h)
    torch.testing.assert_close(slope, numeric, rtol=0, atol=1e-7)
    assert torch.all((g > lo) & (g < hi)) and torch.all((slope > 0) & (slope < 1))


def _saturated(seed: int, n_users: int = 400, n_items: int = 150):
    """Ratings clip(latent + noise) of a strong low-rank taste, much of it past the scale's ends."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_users, 3)) @ rng.normal(size=(3, n_items)) * 0.9
    mask = rng.random((n_users, n_items)) < 0.25
    users, items = (torch.tensor(a) for a in np.nonzero(mask))
    observed = np.clip(latent[mask] + rng.normal(0.0, 0.5, int(mask.sum())), -2.0, 2.0)
    mean_of = np.asarray(clip_link(torch.tensor(latent[~mask]), -2.0, 2.0, 0.5)[0])
    return users, items, torch.tensor(observed, dtype=torch.float32), torch.tensor(np.argwhere(~mask)), mean_of


def _fit_bounded(users, items, target, config: ALSConfig, sweeps: int, n_users: int, n_items: int):
    model = SPEC.build(config, n_users, n_items, torch.Generator().manual_seed(0))
    data = RaterData(users, items, target, torch.Generator().manual_seed(1), bounds=(-2.0, 2.0))
    assert SPEC.sweeps is not None
    return model, run(model, SPEC.sweeps(model, config, data), sweeps)


def test_the_clip_link_fits_saturated_ratings_better_and_inside_the_scale(small_blocks):
    users, items, target, unseen, truth = _saturated(5)
    errors = {}
    for link in ("linear", "clip"):
        config = ALSConfig(dim=3, reg=0.002, reg_bias=0.002, prior_ratings=100.0, link=link, link_sd=0.5)
        model, history = _fit_bounded(users, items, target, config, 15, 400, 150)
        with torch.no_grad():
            pred = model(unseen[:, 0], unseen[:, 1]).double().numpy()
        errors[link] = np.sqrt(np.mean((np.clip(pred, -2.0, 2.0) - truth) ** 2))
        if link == "clip":
            assert np.all((pred >= -2.0) & (pred <= 2.0))
            losses = [h.train_loss for h in history]
            assert all(b <= a * (1 + 1e-4) for a, b in zip(losses, losses[1:], strict=False))
    # The same factors' rank and ridge; only the link differs.
    assert errors["clip"] < 0.8 * errors["linear"]


def test_the_clip_links_gauss_newton_reaches_the_rows_minimum(small_blocks):
    users, items, target, _, _ = _saturated(6, 120, 60)
    config = ALSConfig(dim=2, reg=0.01, reg_bias=0.01, prior_ratings=20.0, link="clip", link_sd=0.5)
    model, _ = _fit_bounded(users, items, target, config, 120, 120, 60)
    # The items' half-sweep came last: one Gauss-Newton step from a settled fit (alternating
    # steps settle slowly: 0.5 after 10 sweeps, 0.01 after 30) leaves their gradient near zero.
    p, b_u = model.user_factors.weight.detach().double(), model.user_bias.weight.detach()[:, 0].double()
    fitted_q = model.item_factors.weight.detach().double()
    fitted_b = model.item_bias.weight.detach()[:, 0].double()
    n = torch.bincount(items, minlength=60).double() + config.prior_ratings

    def item_gradient(q: torch.Tensor, b: torch.Tensor) -> float:
        q, b = q.clone().requires_grad_(), b.clone().requires_grad_()
        z = (p[users] * q[items]).sum(1) + b_u[users] + b[items]
        loss = ((target.double() - clip_link(z, -2.0, 2.0, 0.5)[0]) ** 2).sum()
        loss = loss + (n * (config.reg * (q * q).sum(1) + config.reg_bias * b * b)).sum()
        loss.backward()
        return max(float(q.grad.abs().max()), float(b.grad.abs().max()))

    assert item_gradient(fitted_q, fitted_b) < 2e-3
    assert item_gradient(fitted_q * 0.8, fitted_b * 0.8) > 0.5
    # A new user with a trained user's ratings lands on that user's predictions.
    user = int(torch.bincount(users).argmax())
    mine = users == user
    everything = torch.arange(60)
    with torch.no_grad():
        known = model(torch.full_like(everything, user), everything)
        folded = model.fold_in(items[mine], target[mine])(everything)
    torch.testing.assert_close(folded, known, rtol=0, atol=2e-3)


def test_the_clip_link_needs_the_scale_and_a_width():
    users, items, target = ratings(10, 8, 30, seed=2)
    config = ALSConfig(dim=2, link="clip")
    model = SPEC.build(config, 10, 8, torch.Generator().manual_seed(0))
    assert SPEC.sweeps is not None
    with pytest.raises(ConfigError, match="scale's ends"):
        SPEC.sweeps(model, config, RaterData(users, items, target, torch.Generator().manual_seed(1)))
    with pytest.raises(ConfigError, match="link must be"):
        ALSConfig(link="logit")
    with pytest.raises(ConfigError, match="link_sd"):
        ALSConfig(link="clip", link_sd=0.0)


def test_a_new_users_fold_in_keeps_the_prior_training_gave_every_user(small_blocks):
    users, items, target, n_users, n_items = _low_rank(7, 200, 80, density=0.2)
    config = ALSConfig(dim=3, reg=0.05, reg_bias=0.05, prior_ratings=25.0)
    model, _ = fit(users, items, target, config, 40, n_users, n_items)
    counts = torch.bincount(users, minlength=n_users)
    # A light user, where 25 ratings' worth of prior outweighs their own.
    user = int(torch.argmin(torch.where(counts > 2, counts, counts.max() + 1)))
    mine = users == user
    everything = torch.arange(n_items)
    with torch.no_grad():
        known = model(torch.full_like(everything, user), everything)
        folded = model.fold_in(items[mine], target[mine])(everything)
        model.prior = 0.0  # what the fold-in did before: the user's own count alone
        unshrunk = model.fold_in(items[mine], target[mine])(everything)
    torch.testing.assert_close(folded, known, rtol=0, atol=1e-3)
    assert float((unshrunk - known).abs().max()) > 0.05


def test_the_clip_links_fold_in_stops_only_once_settled(small_blocks, monkeypatch):
    users, items, target, _, _ = _saturated(8)
    config = ALSConfig(dim=3, reg=0.002, reg_bias=0.002, prior_ratings=5.0, link="clip", link_sd=0.5)
    model, _ = _fit_bounded(users, items, target, config, 15, 400, 150)
    everything = torch.arange(150)
    with torch.no_grad():
        folded = [model.fold_in(items[users == u], target[users == u])(everything) for u in range(20)]
        monkeypatch.setattr("movierec.models.als.FOLD_IN_TOL", 0.0)
        monkeypatch.setattr("movierec.models.als.FOLD_IN_STEPS", 60)
        every_step = [model.fold_in(items[users == u], target[users == u])(everything) for u in range(20)]
    for early, full in zip(folded, every_step, strict=True):
        torch.testing.assert_close(early, full, rtol=0, atol=1e-6)
