"""mf: the per-rating regulariser and the closed-form fold-in."""

from __future__ import annotations

import numpy as np
import torch

from movierec.models.mf import SPEC, MFConfig, ridge_fold_in


def test_penalty_is_the_per_rating_l2_of_the_batch_rows():
    model = SPEC.build(MFConfig(dim=4, reg=0.3, reg_bias=0.07, init_std=0.5), 5, 6, torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.user_bias.weight.normal_()
        model.item_bias.weight.normal_()
    users, items = torch.tensor([0, 0, 3]), torch.tensor([1, 5, 1])
    p, q = model.user_factors.weight[users], model.item_factors.weight[items]
    b = model.user_bias.weight[users, 0] ** 2 + model.item_bias.weight[items, 0] ** 2
    expected = 0.3 * ((p**2).sum(1) + (q**2).sum(1)).mean() + 0.07 * b.mean()
    torch.testing.assert_close(model.penalty(users, items), expected)


def test_ridge_fold_in_solves_its_normal_equations():
    rng = np.random.default_rng(0)
    factors = torch.tensor(rng.normal(size=(30, 5)), dtype=torch.float32)
    bias = torch.tensor(rng.normal(size=30), dtype=torch.float32)
    items = torch.tensor([2, 7, 11, 19, 23, 29])
    target = torch.tensor(rng.normal(size=6), dtype=torch.float32)
    scorer = ridge_fold_in(factors, bias, items, target, lam=0.8, lam_bias=0.2)
    # Recover (p, b) from the scorer and check the gradient of the ridge objective vanishes there.
    basis = scorer(torch.arange(30)) - bias
    x = torch.cat([factors, torch.ones(30, 1)], 1).double()
    w = torch.linalg.lstsq(x, basis.double()[:, None]).solution[:, 0]
    p, b = w[:-1], w[-1]
    resid = target.double() - bias[items].double() - factors[items].double() @ p - b
    grad_p = -2 * factors[items].double().T @ resid + 2 * 0.8 * p
    grad_b = -2 * resid.sum() + 2 * 0.2 * b
    assert float(grad_p.abs().max()) < 1e-4 and abs(float(grad_b)) < 1e-4


def test_fold_in_of_a_trained_user_recovers_them(small):
    from movierec import fitting, pipeline
    from movierec.training import TrainConfig

    parts = pipeline.split(small.ratings, pipeline.SplitConfig(seed=3))
    config = TrainConfig.for_model(SPEC, device="cpu", epochs=8, lr=0.02)
    recommender, _ = fitting.fit(parts.fit, parts.val, "mf", train_config=config)
    net = recommender.rater
    user = int(np.bincount(parts.fit.user_idx).argmax())
    mine = parts.fit.user_idx == user
    items = torch.from_numpy(parts.fit.item_idx[mine].astype(np.int64))
    target = torch.from_numpy(parts.fit.rating[mine] - np.float32(recommender.global_mean))
    everything = torch.arange(parts.fit.n_items)
    with torch.no_grad():
        known = net(torch.full_like(everything, user), everything)
        folded = net.fold_in(items, target)(everything)
    # The same objective for one user, solved exactly instead of by a few epochs of Adam.
    assert float(torch.sqrt(torch.mean((known - folded) ** 2))) < 0.1
