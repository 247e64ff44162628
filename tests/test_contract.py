"""The contracts every registered model keeps; a new model is tested by registering it.

Raters (predict ratings) and rankers (order lists) each have their own suite.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from movierec import fitting, models, persist, pipeline, references
from movierec.data.ids import UNKNOWN
from movierec.evaluation import evaluate_ranking
from movierec.metrics import rmse
from movierec.models.als import ALSConfig
from movierec.models.base import Ranker, UserRows
from movierec.training import TrainConfig

VARIANTS = {"als:clip": ("als", ALSConfig(link="clip"))}
"""Settings that change what a model computes (its prediction, its fit), held to the same contracts."""
NAMES = sorted(n for n, s in models.MODELS.items() if s.kind == "rater") + sorted(VARIANTS)
RANKERS = sorted(n for n, s in models.MODELS.items() if s.kind == "ranker")


def model_of(case: str) -> tuple[str, object | None]:
    """(registered name, model config or None for the defaults) of a case of ``NAMES``."""
    return VARIANTS.get(case, (case, None))


@pytest.fixture(scope="module")
def parts(small):
    return pipeline.split(small.ratings, pipeline.SplitConfig(seed=3))


_fitted: dict = {}


def fitted(case, parts):
    """One fit per model for the whole module: training is the slow part."""
    if case not in _fitted:
        name, model_config = model_of(case)
        config = TrainConfig.for_model(models.get(name), device="cpu")
        _fitted[case] = fitting.fit(
            parts.fit, parts.val, name, ranker="popular", train_config=config, model_config=model_config
        )
    return _fitted[case]


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_score_agree(name, parts):
    name, model_config = model_of(name)
    spec = models.get(name)
    generator = torch.Generator().manual_seed(0)
    net = spec.build(model_config or spec.config_type(), parts.fit.n_users, parts.fit.n_items, generator)
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
    recommender, report = fitted(name, parts)
    history = report.history
    assert history and all(np.isfinite(h.train_loss) for h in history)
    pred = recommender.predict_idx(parts.test.user_idx, parts.test.item_idx)
    mean_rmse = rmse(parts.test.rating, np.full(len(parts.test), recommender.global_mean))
    assert rmse(parts.test.rating, pred) < mean_rmse - 0.05


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_model(name, parts):
    recommender, _ = fitted(name, parts)
    name, model_config = model_of(name)
    config = TrainConfig.for_model(models.get(name), device="cpu")
    again, _ = fitting.fit(parts.fit, parts.val, name, ranker="popular", train_config=config, model_config=model_config)
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
    seen_ids = set(recommender.index.item_ids[recommender.history.items_of(3)].tolist())
    assert not seen_ids & {r.item_id for r in rows}
    lo, hi = recommender.scale
    assert all(lo <= r.rating <= hi for r in rows)


@pytest.mark.parametrize("name", NAMES)
def test_optional_hooks_have_the_right_shapes(name, parts):
    recommender, _ = fitted(name, parts)
    net = recommender.rater
    vectors = net.item_vectors()
    if vectors is not None:
        assert vectors.shape[0] == parts.fit.n_items
    # Every built-in rater folds a new user in, so a new user's list shows its ratings,
    # not the bias fallback (the blend folds in only when all its members do).
    scorer = net.fold_in(torch.tensor([1, 2, 3]), torch.tensor([1.0, -1.0, 0.5]))
    assert scorer is not None
    out = scorer(torch.arange(10))
    assert out.shape == (10,)
    assert torch.isfinite(out).all()


# --- rankers ---------------------------------------------------------------------------


_ranked: dict = {}


def ranked(name, parts):
    """One recommender per ranker (rater: baseline) for the module."""
    if name not in _ranked:
        _ranked[name] = fitting.fit(parts.fit, parts.val, "baseline", ranker=name)[0]
    return _ranked[name]


def rows_of(recommender, users):
    return recommender._user_rows(np.asarray(users, dtype=np.int64))


@pytest.mark.parametrize("name", RANKERS)
def test_ranker_scores_every_item_for_every_row(name, parts):
    rec = ranked(name, parts)
    scores = rec.ranker.score(rows_of(rec, [0, 5, 9]))
    assert scores.shape == (3, parts.fit.n_items) and scores.dtype == torch.float32
    assert torch.isfinite(scores).all()


@pytest.mark.parametrize("name", RANKERS)
def test_ranker_is_a_function_of_the_rows(name, parts):
    # A new user with a known user's ratings is scored exactly as that user.
    rec = ranked(name, parts)
    known = rec.ranker.score(rows_of(rec, [7]))
    items, values = rec.history.items_of(7), rec.history.ratings_of(7)
    new = rec.ranker.score(UserRows.one(torch.from_numpy(items.astype(np.int64)), torch.from_numpy(values)))
    torch.testing.assert_close(known, new, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", RANKERS)
def test_contributions_add_up_to_the_score(name, parts):
    rec = ranked(name, parts)
    items, values = rec.history.items_of(4), rec.history.ratings_of(4)
    one = UserRows.one(torch.from_numpy(items.astype(np.int64)), torch.from_numpy(values))
    targets = torch.tensor([1, 2, 3, 50])
    share = rec.ranker.contributions(one, targets)
    if share is None:
        pytest.skip(f"{name} explains nothing (the same list for everyone)")
    assert share.shape == (4, len(items))
    torch.testing.assert_close(share.sum(1), rec.ranker.score(one)[0, targets], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", RANKERS)
def test_a_rankers_answers_do_not_depend_on_what_it_was_asked_before(name, parts):
    # iALS keeps the last user's factorised ridge for the explanation that follows a list:
    # it must never serve one user's solve to another.
    rec = ranked(name, parts)
    pristine = copy.deepcopy(rec.ranker)

    def fresh() -> Ranker:  # a copy that has answered nothing yet
        return copy.deepcopy(pristine)

    def one(user: int) -> UserRows:
        items, values = rec.history.items_of(user), rec.history.ratings_of(user)
        return UserRows.one(torch.from_numpy(items.astype(np.int64)), torch.from_numpy(values.astype(np.float32)))

    targets = torch.tensor([1, 2, 3, 50])
    rec.ranker.score(one(4))
    share = rec.ranker.contributions(one(5), targets)
    if share is not None:
        torch.testing.assert_close(share, fresh().contributions(one(5), targets))
    rec.ranker.contributions(one(6), targets)
    torch.testing.assert_close(rec.ranker.score(one(7)), fresh().score(one(7)))
    moved = one(7)  # the same ratings, one item changed
    moved.items[0] = int(np.setdiff1d(np.arange(parts.fit.n_items), moved.items.numpy())[0])
    torch.testing.assert_close(rec.ranker.score(moved), fresh().score(moved))
    rec.ranker.score(one(7))
    bumped = one(7)  # the same items, one rating changed
    bumped.ratings[0] = 1.0 if float(bumped.ratings[0]) > 1 else 5.0
    torch.testing.assert_close(rec.ranker.score(bumped), fresh().score(bumped))


@pytest.mark.parametrize("name", RANKERS)
def test_ranker_same_seed_same_lists_and_save_load_round_trip(name, parts, tmp_path):
    rec = ranked(name, parts)
    again = fitting.fit(parts.fit, parts.val, "baseline", ranker=name)[0]
    users = np.arange(20)
    np.testing.assert_array_equal(rec.top_n(users, 10).items, again.top_n(users, 10).items)
    persist.save(rec, tmp_path / "m")
    loaded = persist.load(tmp_path / "m")
    np.testing.assert_array_equal(rec.top_n(users, 10).items, loaded.top_n(users, 10).items)
    user_id = rec.index.user_ids[0]
    assert rec.recommend(user_id, 5) == loaded.recommend(user_id, 5)


@pytest.mark.parametrize("name", [n for n in RANKERS if n != "popular"])
def test_personal_rankers_beat_the_popular_list(name, parts):
    # The planted data's users choose what they rate by taste, so a personal list must do better.
    rec = ranked(name, parts)
    ndcg = evaluate_ranking(rec, parts.test)["ndcg"]
    popular = evaluate_ranking(references.popular_of(rec), parts.test)["ndcg"]
    assert ndcg > 1.1 * popular


@pytest.mark.parametrize("name", RANKERS)
def test_similar_items_exclude_the_item_and_are_sorted(name, parts):
    rec = ranked(name, parts)
    item_id = rec.index.item_ids[int(np.argmax(rec.item_counts))]
    rows = rec.similar_items(item_id, 10)
    assert rows and item_id not in [r.item_id for r in rows]
    scores = [r.score for r in rows]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
