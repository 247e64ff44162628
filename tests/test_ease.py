"""ease: the closed form against a dense solve, with and without the genre rows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from movierec import fitting, pipeline
from movierec.data.ratings import Ratings
from movierec.errors import ConfigError
from movierec.models import ease
from movierec.models.base import RankerData
from movierec.models.ease import EASEConfig, through_rows


def _log(genres: list[str] | None) -> Ratings:
    # Items 1 and 2 (Animation) are never rated by the same user; item 3 (Drama) is rated with both.
    users = [1, 1, 2, 2, 3, 4]
    items = [1, 3, 2, 3, 3, 1]
    ratings = Ratings.from_ids(np.array(users), np.array(items), np.array([5, 4, 4, 3, 5, 2], dtype=np.float32))
    return ratings if genres is None else replace(ratings, genres=np.array(genres))


def _dense_b(r: Ratings, l2: float, genres: float) -> np.ndarray:
    """EASE by the book: X with the genre rows stacked under it, B = I - P / diag(P)."""
    x = np.zeros((r.n_users, r.n_items))
    floor = r.rating_floor()  # 2..5 present, whole steps: 1
    x[r.user_idx, r.item_idx] = (r.rating - floor) / (r.rating.max() - floor)
    f = r.genre_matrix()
    if f is not None:
        x = np.vstack([x, np.sqrt(genres) * f])
    p = np.linalg.inv(x.T @ x + l2 * np.eye(r.n_items))
    return np.eye(r.n_items) - p / np.diag(p)[None, :]


@pytest.mark.parametrize("weight", [0.0, 0.5, 10.0])
def test_the_fitted_matrix_is_the_closed_form_with_genre_rows(weight):
    r = _log(["Animation", "Animation", "Drama"])
    ranker, config, _ = fitting.fit_ranker([r], "ease", EASEConfig(l2=0.5, genres=weight))
    assert config.genres == weight
    np.testing.assert_allclose(ranker.B.numpy(), _dense_b(r, 0.5, weight), atol=1e-5)


def test_genres_link_items_that_no_one_rated_together():
    without, _, _ = fitting.fit_ranker([_log(["Animation", "Animation", "Drama"])], "ease", EASEConfig(genres=0.0))
    with_genres, _, _ = fitting.fit_ranker([_log(["Animation", "Animation", "Drama"])], "ease", EASEConfig())
    # Items 1 and 2 are linked only through item 3 (negatively: each stands in for the other's co-rater).
    assert float(without.B[0, 1]) <= 0
    assert float(with_genres.B[0, 1]) > 0 and float(with_genres.B[1, 0]) > 0
    # Items of different genres are linked by ratings alone, and the genre rows, adding to each
    # item's own diagonal, shrink that link a little as the ridge would.
    assert float(with_genres.B[0, 2]) < float(without.B[0, 2])


def test_a_log_without_genres_says_so_in_the_config():
    ranker, config, _ = fitting.fit_ranker([_log(None)], "ease", EASEConfig(genres=10.0))
    assert config.genres == 0.0
    np.testing.assert_allclose(ranker.B.numpy(), _dense_b(_log(None), 100.0, 0.0), atol=1e-5)
    # So do genres that name nothing ("" for every item).
    _, config, _ = fitting.fit_ranker([_log(["", "", ""])], "ease", EASEConfig(genres=10.0))
    assert config.genres == 0.0


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), 1e6])
def test_a_genre_weight_out_of_range_is_refused(bad):
    # Far past the ratings' scale the float32 Cholesky fails: refused before any fitting.
    with pytest.raises(ConfigError, match="genres must be from 0 to 1000"):
        EASEConfig(genres=bad)


@pytest.mark.parametrize("bad", [-1.0, 0.0, float("nan"), float("inf")])
def test_a_ridge_out_of_range_is_refused(bad):
    with pytest.raises(ConfigError, match="l2 must be a finite number > 0"):
        EASEConfig(l2=bad)


def test_the_largest_genre_weight_still_fits():
    ranker, _, _ = fitting.fit_ranker([_log(["Animation", "Animation", "Drama"])], "ease", EASEConfig(genres=1000.0))
    assert torch.isfinite(ranker.B).all()


def test_train_keeps_the_genres_through_selection_and_refit():
    # The whole of fitting.fit on a split log with genres: the ranker it serves used them.
    rng = np.random.default_rng(0)
    n_users, n_items = 60, 40
    users, items = rng.integers(0, n_users, 900), rng.integers(0, n_items, 900)
    genres = {i: ("Animation" if i % 2 else "Drama") for i in range(n_items)}
    ratings = Ratings.from_ids(users, items, rng.integers(1, 6, 900).astype(np.float32), genres=genres)
    parts = pipeline.split(ratings)
    rec, _ = fitting.fit(parts.fit, parts.val, None)
    assert rec.ranker_name == "ease" and rec.ranker_config.genres == 10.0
    assert "genres 10" in rec.info["lists_choice"]
    plain, _ = fitting.fit(replace(parts.fit, genres=None), parts.val, None)
    assert plain.ranker_config.genres == 0.0 and "genres 0" in plain.info["lists_choice"]


@pytest.mark.parametrize("name", ["ease", "ials", "popular"])
def test_no_ranker_depends_on_where_zero_sits_on_the_scale(small, name):
    # The same ratings on 0.5..5 and on -2.5..2 (declared): every score the same. Weighed by
    # r / r_max, the 45% of ratings <= 0 on the shifted scale counted for nothing.
    r = small.ratings
    lo, hi = r.rating_scale()
    assert lo <= 0.5 and hi == 5.0
    base = replace(r, scale=(0.5, 5.0), step=0.5)
    shifted = replace(r, rating=r.rating - np.float32(3.0), scale=(-2.5, 2.0), step=0.5)
    fitted = [fitting.fit_ranker([log], name, seed=1)[0] for log in (base, shifted)]
    assert [float(f.rating_floor) for f in fitted] == [0.0, -3.0]
    rows = RankerData(
        torch.from_numpy(r.user_idx).long(), torch.from_numpy(r.item_idx).long(), torch.from_numpy(r.rating),
        r.n_users, 5.0, torch.Generator(),
    ).rows()  # fmt: skip
    scores = [f.score(rows if k == 0 else replace(rows, ratings=rows.ratings - 3.0)) for k, f in enumerate(fitted)]
    torch.testing.assert_close(scores[0], scores[1], rtol=1e-4, atol=1e-5)


def test_a_scale_far_from_zero_round_trips_with_every_ranker(tmp_path):
    from movierec import persist

    r = _log(None)
    far = replace(r, rating=r.rating * 20 + 100, scale=(120.0, 200.0), step=20.0)  # 2..5 stars as 140..200
    for name in ("popular", "ease"):
        rec, _ = fitting.fit(far, None, None, ranker=name)
        assert float(rec.ranker.rating_floor) == 100.0 and float(rec.ranker.rating_max) == 200.0
        loaded = persist.load(persist.save(rec, tmp_path / name))
        assert loaded.recommend(loaded.user_id(0), 2) == rec.recommend(rec.user_id(0), 2)


@pytest.mark.parametrize("weight", [0.0, 10.0])
def test_few_users_and_many_items_give_the_same_closed_form_through_the_rows(weight, monkeypatch):
    # 5 users (and 2 genre rows) against 30 items: B comes from a 7 x 7 solve, not a 30 x 30 Cholesky.
    rng = np.random.default_rng(1)
    users, items = rng.integers(0, 5, 60), rng.integers(0, 30, 60)
    genres = {i: ("Animation" if i % 3 else "Drama") for i in range(30)}
    r = Ratings.from_ids(users, items, rng.integers(1, 6, 60).astype(np.float32), genres=genres)
    r = r.take(np.sort(np.unique(r.user_idx * r.n_items + r.item_idx, return_index=True)[1]))  # one per pair
    solves = []
    monkeypatch.setattr(ease, "through_rows", lambda *a: solves.append(1) or through_rows(*a))
    ranker, _, _ = fitting.fit_ranker([r], "ease", EASEConfig(l2=3.0, genres=weight))
    assert solves == [1]
    np.testing.assert_allclose(ranker.B.numpy(), _dense_b(r, 3.0, weight), atol=1e-5)
