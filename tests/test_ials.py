"""ials: conjugate-gradient sweeps against the exact ridge solutions and the dense objective."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from movierec.models.base import RankerData, UserRows
from movierec.models.ials import SPEC, IALSConfig, cg_side, solve_side
from movierec.models.rows import RowBlocks


def _log(n_users: int = 30, n_items: int = 20, n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    keys = rng.choice(n_users * n_items, n, replace=False)
    users = torch.from_numpy(keys // n_items)
    items = torch.from_numpy(keys % n_items)
    ratings = torch.from_numpy(rng.integers(1, 6, n).astype(np.float32))
    return users, items, ratings


def _objective(model, p: torch.Tensor, users, items, ratings) -> float:
    """Hu et al.'s loss over the whole users x items matrix, computed densely."""
    q = model.item_factors.double()
    conf = torch.full((len(p), model.n_items), model.unrated_weight, dtype=torch.float64)
    pref = torch.zeros_like(conf)
    conf[users, items] += model.alpha * model.weights(ratings).double()
    pref[users, items] = 1.0
    err = pref - p.double() @ q.T
    return float((conf * err**2).sum() + model.reg * ((p.double() ** 2).sum() + (q**2).sum()))


def test_enough_cg_steps_reach_the_exact_solve():
    users, items, ratings = _log()
    model = SPEC.build(IALSConfig(dim=6), 30, 20, torch.Generator())
    model.rating_max.fill_(5.0)
    model.item_factors.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    blocks = RowBlocks(users, items, ratings, 30, 20)
    q = model.item_factors
    exact, iterated = torch.zeros(30, 6), torch.zeros(30, 6)
    solve_side(blocks, q, exact, model, model.unrated_weight * (q.T @ q))
    cg_side(blocks, q, iterated, model, model.unrated_weight * (q.T @ q), steps=12)  # 2 x dim: past rounding
    torch.testing.assert_close(iterated, exact, atol=1e-4, rtol=1e-4)
    # Three steps from zero are not yet there: the comparison above can fail.
    few = torch.zeros(30, 6)
    cg_side(blocks, q, few, model, model.unrated_weight * (q.T @ q), steps=1)
    assert float((few - exact).abs().max()) > 1e-3


@pytest.mark.parametrize("cg_steps", [0, 3])
def test_every_sweep_lowers_the_whole_matrix_objective(cg_steps):
    users, items, ratings = _log(seed=2)
    config = IALSConfig(dim=4, reg=1.0, cg_steps=cg_steps, sweeps=6)
    model = SPEC.build(config, 30, 20, torch.Generator())
    data = RankerData(users, items, ratings, 30, 5.0, torch.Generator().manual_seed(0))
    assert SPEC.sweeps is not None
    fitter = SPEC.sweeps(model, config, data)
    losses = []
    for epoch in range(config.sweeps):
        fitter.sweep(epoch)
        losses.append(_objective(model, fitter.p, users, items, ratings))
    assert all(b <= a * (1 + 1e-6) for a, b in zip(losses, losses[1:], strict=False)), losses
    assert losses[-1] < losses[0]
    # A user's vector at scoring time is the exact ridge solution, whatever the sweeps did.
    rows = UserRows.one(items[users == 3], ratings[users == 3])
    solved = model.user_vectors(rows)[0]
    q = model.item_factors.double()
    w = model.weights(rows.ratings).double() * model.alpha
    qr = q[rows.items]
    a = model.unrated_weight * q.T @ q + (qr * w[:, None]).T @ qr + model.reg * torch.eye(4, dtype=torch.float64)
    b = qr.T @ (w + model.unrated_weight)
    torch.testing.assert_close(solved.double(), torch.linalg.solve(a, b), atol=1e-4, rtol=1e-4)
    # One row alone takes a shorter path than a batch (blocks of rows): both give the same vector.
    other = UserRows.one(items[users == 5], ratings[users == 5])
    both = UserRows(
        torch.tensor([0, len(rows.items), len(rows.items) + len(other.items)]),
        torch.cat([rows.items, other.items]),
        torch.cat([rows.ratings, other.ratings]),
    )
    batch = model.user_vectors(both)
    torch.testing.assert_close(batch[0], solved, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batch[1], model.user_vectors(other)[0], atol=1e-5, rtol=1e-5)


def test_train_stops_the_sweeps_where_the_validation_ndcg_peaks_and_refits_with_that_many(small):
    from movierec import fitting, pipeline

    parts = pipeline.split(small.ratings)
    ndcg = iter([0.10, 0.30, 0.20, 0.25, 0.9, 0.9])  # planted: the second sweep is the best
    config = IALSConfig(dim=8, sweeps=6)
    ranker, kept, history = fitting.fit_ranker([parts.fit], "ials", config, rank=lambda _: next(ndcg))
    assert len(history) == 2 + fitting.RANKER_PATIENCE and kept == IALSConfig(dim=8, sweeps=2)
    assert [h.val_ndcg for h in history] == [0.10, 0.30, 0.20, 0.25]
    # The model kept is the second sweep's, which a plain fit of two sweeps gives again.
    again, _, plain = fitting.fit_ranker([parts.fit], "ials", kept)
    torch.testing.assert_close(ranker.item_factors, again.item_factors, atol=0, rtol=0)
    assert len(plain) == 2 and plain[0].val_ndcg is None


def test_large_logs_compare_heavier_ridges_and_a_nan_sweep_is_never_the_best(small):
    from movierec import fitting, pipeline
    from movierec.models.ials import _candidates

    assert [c.reg for c in _candidates(100, 50, 1_000)][0] == IALSConfig().reg  # the default first
    assert [c.reg for c in _candidates(138_493, 26_744, 15_000_000)] == [30.0, 100.0, 300.0, 1000.0]
    parts = pipeline.split(small.ratings)
    ndcg = iter([float("nan"), 0.2, 0.3, 0.1, 0.1, 0.1])
    _, kept, history = fitting.fit_ranker([parts.fit], "ials", IALSConfig(dim=4, sweeps=6), rank=lambda _: next(ndcg))
    assert kept.sweeps == 3 and len(history) == 5
