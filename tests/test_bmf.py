"""bmf: the sampler's pieces against closed forms, and the saved posterior mean."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from movierec import fitting, models, pipeline, references
from movierec.evaluation import evaluate
from movierec.models.base import RaterData
from movierec.models.bmf import BMFConfig
from movierec.models.gibbs import PosteriorMean, Sampler
from movierec.training import TrainConfig


def _ctx(users, items, target, seed=0):
    return RaterData(
        torch.tensor(users),
        torch.tensor(items),
        torch.tensor(target, dtype=torch.float32),
        generator=torch.Generator().manual_seed(seed),
    )


def test_posterior_mean_of_samples_is_exact_while_its_rank_fits():
    rng = np.random.default_rng(0)
    mean = PosteriorMean(30, 20, dim=6, device=torch.device("cpu"))

    class Sample:  # what PosteriorMean reads from the sampler
        pass

    # Samples differ, but all live in one rank-5 space, so keeping rank 6 must lose nothing
    # through three compressions (after samples 4 and 8, and at the end).
    basis_u, basis_v = rng.normal(size=(30, 5)), rng.normal(size=(20, 5))
    total = np.zeros((30, 20))
    for step in range(9):
        s = Sample()
        s.U = torch.tensor((basis_u @ rng.normal(size=(5, 3))).T)
        s.V = torch.tensor((basis_v @ rng.normal(size=(5, 3))).T)
        s.w_u, s.w_i = torch.full((30,), float(step)), torch.zeros(20)
        mean.add(s)
        total += s.U.numpy().T @ s.V.numpy()
    w_u, _, a, b = mean.factors()
    assert a.shape == (30, 6) and b.shape == (20, 6)
    np.testing.assert_allclose((a @ b.T).numpy(), total / 9, atol=1e-9)
    np.testing.assert_allclose(w_u.numpy(), 4.0)


def test_posterior_mean_keeps_its_shape_with_fewer_users_than_its_dimension():
    # 4 users, rank 32 asked: the compression's SVD has 4 values; the factors are padded to 32.
    rng = np.random.default_rng(1)
    mean = PosteriorMean(4, 50, dim=32, device=torch.device("cpu"))

    class Sample:
        pass

    total = np.zeros((4, 50))
    for _ in range(9):
        s = Sample()
        s.U, s.V = torch.tensor(rng.normal(size=(32, 4))), torch.tensor(rng.normal(size=(32, 50)))
        s.w_u, s.w_i = torch.zeros(4), torch.zeros(50)
        mean.add(s)
        total += s.U.numpy().T @ s.V.numpy()
    _, _, a, b = mean.factors()
    assert a.shape == (4, 32) and b.shape == (50, 32)
    np.testing.assert_allclose((a @ b.T).numpy(), total / 9, atol=1e-9)  # rank 4 holds it all


def test_bmf_trains_on_a_log_with_fewer_users_than_its_dimension():
    from movierec.data.synthetic import SyntheticConfig, generate

    ratings = generate(SyntheticConfig(n_users=12, n_items=150, n_ratings=900, seed=4)).ratings
    parts = pipeline.split(ratings)
    config = TrainConfig.for_model(models.get("bmf"), epochs=6)
    rec, _ = fitting.fit(parts.fit, parts.val, "bmf", ranker="popular", train_config=config)
    assert np.isfinite(evaluate(rec, parts.test)["rmse"])


def test_implicit_vectors_are_sampled_from_their_exact_posterior():
    # Items 0..3 rated by users 0..2; the item vectors V are held fixed, and the users' implicit
    # vectors z must then follow N(P^-1 b, P^-1) with P = lam_z I + lam_v W^T W, W_ij = d_i [j rated i].
    users = [0, 1, 0, 2, 1, 2, 0, 1]
    items = [0, 0, 1, 1, 2, 2, 3, 3]
    sampler = Sampler(_ctx(users, items, [0.0] * 8), 3, 4, BMFConfig(dim=1, inner=1))
    lam_v, m_v, lam_z, m_z = 4.0, 0.2, 2.0, -0.1
    sampler.hyper["V"] = (np.array([m_v]), np.array([lam_v]))
    sampler.normal_gamma = lambda name, theta: (np.array([m_z]), np.array([lam_z]))  # hyperparameters fixed
    sampler.V = torch.tensor([[0.9, -0.4, 0.3, 1.2]])
    count = torch.bincount(torch.tensor(items), minlength=4).float()

    w = np.zeros((4, 3))
    w[items, users] = 1 / np.sqrt(count.numpy()[items])
    precision = lam_z * np.eye(3) + lam_v * w.T @ w
    t = sampler.V.numpy()[0] - m_v
    exact_mean = np.linalg.solve(precision, lam_z * m_z + lam_v * w.T @ t)
    exact_cov = np.linalg.inv(precision)

    z = torch.zeros(1, 3)
    draws = []
    for step in range(6000):
        sampler.augment(z, sampler.V, sampler.rated_by_item, sampler.u, count, "V", "z")
        if step >= 200:
            draws.append(z[0].clone().numpy())
    draws = np.array(draws)
    # Draws are autocorrelated; 5800 of them still pin the mean to a few hundredths of a standard deviation.
    sd = np.sqrt(np.diag(exact_cov))
    assert np.all(np.abs(draws.mean(0) - exact_mean) < 0.12 * sd)
    np.testing.assert_allclose(np.cov(draws.T), exact_cov, atol=0.15 * sd.max() ** 2)


def test_a_row_is_drawn_jointly_from_its_exact_gaussian_conditional():
    # User 0 rated items 0..2; with the items, alpha and the priors held fixed, (U_0, w_0) must
    # follow N(P^-1 (alpha X^T y + lam * m), P^-1), P = alpha X^T X + diag(lam), x = [V_i, 1].
    users, items, target = [0, 0, 0, 1], [0, 1, 2, 0], [1.0, -0.5, 0.3, 0.0]
    sampler = Sampler(_ctx(users, items, target), 2, 3, BMFConfig(dim=1, implicit_item=False))
    sampler.alpha = 2.0
    lam, m = np.array([3.0, 0.5]), np.array([0.4, -0.2])  # factor, bias
    fixed = {"U": (m[:1], lam[:1]), "w_u": (m[1:], lam[1:])}
    sampler.normal_gamma = lambda name, theta: fixed[name]
    sampler.V = torch.tensor([[0.9, -0.4, 1.5]])
    sampler.w_i = torch.tensor([0.1, 0.2, -0.3])
    x = np.stack([sampler.V.numpy()[0], np.ones(3)], 1)
    y = np.array(target[:3]) - sampler.w_i.numpy()
    precision = 2.0 * x.T @ x + np.diag(lam)
    exact_mean = np.linalg.solve(precision, 2.0 * x.T @ y + lam * m)
    exact_cov = np.linalg.inv(precision)

    draws = []
    for _ in range(4000):
        sse = sampler.rows(sampler.by_user, sampler.U, sampler.w_u, sampler.V, sampler.w_i, None, "U", "w_u")
        draw = np.array([float(sampler.U[0, 0]), float(sampler.w_u[0])])
        draws.append(draw)
        # The returned squared error is the new sample's, over this side's ratings.
        resid = np.append(
            y - x @ draw, 0.0 - float(sampler.w_i[0]) - float(sampler.U[0, 1] * sampler.V[0, 0]) - float(sampler.w_u[1])
        )
        assert sse == pytest.approx(float((resid**2).sum()), rel=1e-4, abs=1e-5)
    draws = np.array(draws)
    sd = np.sqrt(np.diag(exact_cov))
    assert np.all(np.abs(draws.mean(0) - exact_mean) < 0.08 * sd)
    np.testing.assert_allclose(np.cov(draws.T), exact_cov, atol=0.1 * sd.max() ** 2)


@pytest.fixture(scope="module")
def fitted(small):
    parts = pipeline.split(small.ratings, pipeline.SplitConfig(seed=3))
    config = TrainConfig.for_model(models.get("bmf"), device="cpu", epochs=40)
    recommender, report = fitting.fit(parts.fit, parts.val, "bmf", train_config=config, model_config=BMFConfig(dim=8))
    return parts, recommender, report.history


def test_averaging_samples_beats_the_baseline_on_planted_structure(fitted):
    parts, recommender, history = fitted
    assert len(history) == 40
    rmse = evaluate(recommender, parts.test)["rmse"]
    base = evaluate(references.baseline_of(recommender), parts.test)["rmse"]
    assert rmse < base - 0.01
    # The last row's validation figure is the saved model's own, not the running estimate's.
    assert history[-1].val_rmse == pytest.approx(evaluate(recommender, parts.val)["rmse"], abs=1e-4)


def test_fold_in_of_a_training_user_lands_near_their_predictions(fitted):
    parts, recommender, _ = fitted
    net = recommender.rater
    lam, lam_bias = net.fold_in_ridge.tolist()
    assert lam > 0 and lam_bias > 0
    user = int(np.bincount(parts.fit.user_idx).argmax())
    mine = parts.fit.user_idx == user
    items = torch.from_numpy(parts.fit.item_idx[mine].astype(np.int64))
    target = torch.from_numpy(parts.fit.rating[mine] - np.float32(recommender.global_mean))
    scorer = net.fold_in(items, target)
    others = torch.arange(parts.fit.n_items)
    with torch.no_grad():
        known = net(torch.full_like(others, user), others)
        folded = scorer(others)
    assert float(torch.sqrt(torch.mean((known - folded) ** 2))) < 0.15
