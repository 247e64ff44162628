"""The contract every registered model keeps; a new model is tested by registering it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from movierec import models, persist, pipeline
from movierec.data.ids import UNKNOWN
from movierec.metrics import rmse
from movierec.training import TrainConfig

NAMES = sorted(models.MODELS)


@pytest.fixture(scope="module")
def parts(small):
    return pipeline.split(small.ratings, pipeline.SplitConfig(seed=3))


_fitted: dict = {}


def fitted(name, parts):
    """One fit per model for the whole module: training is the slow part."""
    if name not in _fitted:
        spec = models.get(name)
        config = TrainConfig.for_model(spec, device="cpu")
        _fitted[name] = pipeline.fit(parts.fit, parts.val, name, train_config=config)
    return _fitted[name]


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_score_agree(name, parts):
    spec = models.get(name)
    net = spec.build(spec.config_type(), parts.fit.n_users, parts.fit.n_items, torch.Generator().manual_seed(0))
    users = torch.tensor([0, 1, 2])
    items = torch.tensor([5, 6, 7, 8])
    net.eval()
    with torch.no_grad():
        grid = net.score(users, items)
        pairs = net(users.repeat_interleave(4), items.repeat(3)).view(3, 4)
    assert grid.shape == (3, 4)
    assert pairs.dtype == torch.float32
    torch.testing.assert_close(grid, pairs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_learns_better_than_the_mean(name, parts):
    recommender, history = fitted(name, parts)
    assert history and all(np.isfinite(h["train_loss"]) for h in history)
    pred = recommender.predict_idx(parts.test.user_idx, parts.test.item_idx)
    mean_rmse = rmse(parts.test.rating, np.full(len(parts.test), recommender.global_mean))
    assert rmse(parts.test.rating, pred) < mean_rmse - 0.05


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_model(name, parts):
    recommender, _ = fitted(name, parts)
    spec = models.get(name)
    again, _ = pipeline.fit(parts.fit, parts.val, name, train_config=TrainConfig.for_model(spec, device="cpu"))
    a = recommender.predict_idx(parts.test.user_idx[:500], parts.test.item_idx[:500])
    b = again.predict_idx(parts.test.user_idx[:500], parts.test.item_idx[:500])
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name, parts, tmp_path):
    recommender, _ = fitted(name, parts)
    persist.save(recommender, tmp_path / "m")
    loaded = persist.load(tmp_path / "m")
    users, items = parts.test.user_idx[:500], parts.test.item_idx[:500]
    np.testing.assert_array_equal(recommender.predict_idx(users, items), loaded.predict_idx(users, items))
    user_id = recommender.index.user_ids[0]
    assert recommender.recommend(user_id, 5) == loaded.recommend(user_id, 5)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_ids_fall_back_within_scale(name, parts):
    recommender, _ = fitted(name, parts)
    pred = recommender.predict_idx(np.array([UNKNOWN, 0, UNKNOWN]), np.array([0, UNKNOWN, UNKNOWN]))
    lo, hi = recommender.scale
    assert np.all((pred >= lo) & (pred <= hi))
    assert pred[2] == pytest.approx(np.clip(recommender.global_mean, lo, hi))
    assert pred[0] == pytest.approx(np.clip(recommender.global_mean + recommender.item_bias[0], lo, hi))


@pytest.mark.parametrize("name", NAMES)
def test_recommend_excludes_seen_and_is_sorted(name, parts):
    recommender, _ = fitted(name, parts)
    user_id = recommender.index.user_ids[3]
    rows = recommender.recommend(user_id, 20)
    assert len(rows) == 20
    seen_ids = set(recommender.index.item_ids[recommender.seen(3)].tolist())
    assert not seen_ids & {r["item_id"] for r in rows}
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("name", NAMES)
def test_optional_hooks_have_the_right_shapes(name, parts):
    recommender, _ = fitted(name, parts)
    net = recommender.model
    vectors = net.item_vectors()
    if vectors is not None:
        assert vectors.shape[0] == parts.fit.n_items
    scorer = net.fold_in(torch.tensor([1, 2, 3]), torch.tensor([1.0, -1.0, 0.5]))
    if scorer is not None:
        out = scorer(torch.arange(10))
        assert out.shape == (10,)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_declares_a_positive_scoring_cost(name, parts):
    recommender, _ = fitted(name, parts)
    cost = recommender.model.score_cost
    assert isinstance(cost, int) and cost >= 1
    # The ranking report scores every test user of a small log, and a bounded number of a huge one.
    assert pipeline.ranking_users(parts.fit.n_items, cost) == pipeline.RANKING_MAX_USERS
    assert 100 <= pipeline.ranking_users(10**7, cost) < pipeline.RANKING_MAX_USERS
