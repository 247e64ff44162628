"""knn: neighbour lists and predictions against a brute-force computation of the same formulas."""

from __future__ import annotations

import numpy as np
import torch

from movierec.models.base import RaterData, fit_quietly
from movierec.models.baseline import BaselineConfig, fit_biases
from movierec.models.knn import SPEC, KNNConfig, top_neighbours


def _tiny(seed: int = 0, n_users: int = 40, n_items: int = 25, n: int = 400):
    rng = np.random.default_rng(seed)
    keys = rng.choice(n_users * n_items, n, replace=False)
    users, items = keys // n_items, keys % n_items
    target = rng.normal(0, 1, n).round(1)
    return users, items, target


def _fitted(config: KNNConfig, users, items, target):
    """A knn fitted to the 40 x 25 log from ``_tiny``."""
    model = SPEC.build(config, 40, 25, torch.Generator())
    data = RaterData(
        torch.from_numpy(users),
        torch.from_numpy(items),
        torch.from_numpy(target.astype(np.float32)),
        generator=torch.Generator(),
    )
    assert SPEC.sweeps is not None
    fit_quietly(SPEC.sweeps(model, config, data), 1)
    return model


def _dense_similarity(users, items, residual, n_users, n_items, shrinkage):
    r = np.zeros((n_users, n_items))
    m = np.zeros((n_users, n_items))
    r[users, items] = residual
    m[users, items] = 1
    norm = np.sqrt((r * r).sum(0))
    support = m.T @ m
    shrunk = np.maximum(support - 1, 0)
    sim = (r.T @ r) / np.maximum(np.outer(norm, norm), 1e-12) * shrunk / (shrunk + shrinkage)
    np.fill_diagonal(sim, -np.inf)
    return sim


def test_blocks_find_the_same_neighbours_as_a_dense_matrix():
    users, items, target = _tiny()
    config = KNNConfig(neighbours=6, shrinkage=3.0, block=7)  # several blocks, the last one short
    idx, sim = top_neighbours(users, items, target, 40, 25, config)
    dense = _dense_similarity(users, items, target, 40, 25, 3.0)
    expected = -np.sort(-dense, axis=1)[:, :6]
    np.testing.assert_allclose(sim.numpy(), np.maximum(expected, 0), rtol=1e-5, atol=1e-6)
    for item in range(25):
        picked = dense[item, idx[item].numpy()]
        np.testing.assert_allclose(np.maximum(picked, 0), sim[item].numpy(), rtol=1e-5, atol=1e-6)
        assert item not in idx[item].tolist()


def test_a_candidate_cut_draws_neighbours_from_the_most_rated_items_only():
    users, items, target = _tiny(seed=3)
    counts = np.bincount(items, minlength=25)
    top = np.argsort(-counts, kind="stable")[:10]  # ties to the lower index, as the fit breaks them
    config = KNNConfig(neighbours=4, shrinkage=3.0, candidates=10, block=3)
    idx, sim = top_neighbours(users.astype(np.int32), items.astype(np.int32), target, 40, 25, config)
    dense = _dense_similarity(users, items, target, 40, 25, 3.0)
    allowed = np.full_like(dense, -np.inf)
    allowed[:, top] = dense[:, top]
    expected = -np.sort(-allowed, axis=1)[:, :4]
    np.testing.assert_allclose(sim.numpy(), np.maximum(expected, 0), rtol=1e-5, atol=1e-6)
    picked = idx[sim > 0].numpy()
    assert set(picked.tolist()) <= set(top.tolist())
    assert idx.dtype == torch.int64


def test_prediction_is_the_weighted_mean_of_the_top_k_rated_neighbours():
    users, items, target = _tiny(seed=1)
    config = KNNConfig(k=3, neighbours=24, shrinkage=2.0, damping=0.3, reg_user=5.0, reg_item=3.0)
    model = _fitted(config, users, items, target)

    b_u, b_i = fit_biases(users, items, target, 40, 25, BaselineConfig(5.0, 3.0))
    residual = target - b_u[users] - b_i[items]
    sim = _dense_similarity(users, items, residual, 40, 25, 2.0)
    rated = {(u, i): r for u, i, r in zip(users, items, residual, strict=True)}
    pairs = [(u, i) for u in range(0, 40, 3) for i in range(0, 25, 4)]
    expected = []
    for u, i in pairs:
        candidates = sorted(
            ((sim[i, j], rated[(u, j)]) for j in range(25) if (u, j) in rated and j != i and sim[i, j] > 0),
            key=lambda t: -t[0],
        )[:3]
        num = sum(s * r for s, r in candidates)
        den = sum(s for s, _ in candidates)
        expected.append(b_u[u] + b_i[i] + (num / (den + 0.3) if den > 0 else 0.0))
    got = model(torch.tensor([u for u, _ in pairs]), torch.tensor([i for _, i in pairs]))
    np.testing.assert_allclose(got.numpy(), np.array(expected), rtol=1e-4, atol=1e-5)


def test_fold_in_of_a_known_user_matches_their_predictions():
    users, items, target = _tiny(seed=2)
    config = KNNConfig(k=5, neighbours=24, reg_user=15.0)
    model = _fitted(config, users, items, target)
    user = int(np.bincount(users).argmax())
    mine = users == user
    # Folding in exactly the ratings the user trained with reproduces the bias and neighbourhood:
    # the fold-in bias uses the final item biases, training's the alternating fit; they agree closely.
    scorer = model.fold_in(torch.from_numpy(items[mine]), torch.from_numpy(target[mine].astype(np.float32)))
    all_items = torch.arange(25)
    known = model(torch.full((25,), user), all_items)
    np.testing.assert_allclose(scorer(all_items).numpy(), known.numpy(), atol=0.05)
