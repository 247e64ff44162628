"""als: every half-sweep is the exact ridge solution of mf's objective for its side."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from movierec.errors import ConfigError
from movierec.models import rows
from movierec.models.als import SPEC, ALSConfig
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
