"""ease: the closed form against a dense solve, with and without the genre rows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from movierec import fitting
from movierec.data.ratings import Ratings
from movierec.errors import ConfigError
from movierec.models.ease import EASEConfig


def _log(genres: list[str] | None) -> Ratings:
    # Items 1 and 2 (Animation) are never rated by the same user; item 3 (Drama) is rated with both.
    users = [1, 1, 2, 2, 3, 4]
    items = [1, 3, 2, 3, 3, 1]
    ratings = Ratings.from_ids(np.array(users), np.array(items), np.array([5, 4, 4, 3, 5, 2], dtype=np.float32))
    return ratings if genres is None else replace(ratings, genres=np.array(genres))


def _dense_b(r: Ratings, l2: float, genres: float) -> np.ndarray:
    """EASE by the book: X with the genre rows stacked under it, B = I - P / diag(P)."""
    x = np.zeros((r.n_users, r.n_items))
    x[r.user_idx, r.item_idx] = r.rating / r.rating.max()
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


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_a_negative_or_missing_genre_weight_is_refused(bad):
    with pytest.raises(ConfigError, match="genres must be >= 0"):
        EASEConfig(genres=bad)
