"""Lists on the real ml-latest-small titles: a new user's few ratings steer the list to their taste.

Trained as ``train`` serves by default on the whole release (EASE ranker, the baseline as
the rater for speed: the rater only rates the listed items). Genres come from movies.csv.
"""

from __future__ import annotations

import csv

import pytest

from movierec import fitting
from movierec.data.load import load

ANIMATED = ("Toy Story (1995)", "Monsters, Inc. (2001)", "Finding Nemo (2003)", "Incredibles, The (2004)")
HORROR = ("Shining, The (1980)", "Halloween (1978)", "Exorcist, The (1973)", "Texas Chainsaw Massacre, The (1974)")


@pytest.fixture(scope="module")
def real(ml_latest_small):
    ratings = load(ml_latest_small)
    recommender, _ = fitting.fit(ratings, None, "baseline", ranker="ease")
    with open(ml_latest_small / "movies.csv", newline="", encoding="utf-8") as f:
        movies = {int(row["movieId"]): row for row in csv.DictReader(f)}
    return recommender, movies


def _ids(movies: dict, titles: tuple[str, ...]) -> list[int]:
    by_title = {row["title"]: movie_id for movie_id, row in movies.items()}
    return [by_title[t] for t in titles]


@pytest.mark.parametrize(("titles", "genre"), [(ANIMATED, "Animation"), (HORROR, "Horror")])
def test_a_few_five_star_ratings_give_a_list_mostly_of_that_genre(real, titles, genre):
    recommender, movies = real
    rated = _ids(movies, titles)
    found = recommender.recommend_new_user([(i, 5.0) for i in rated], k=10)
    listed = [row.item_id for row in found.items]
    assert found.source == "fold-in" and len(listed) == 10 and not set(listed) & set(rated)
    of_genre = [i for i in listed if genre in movies[i]["genres"].split("|")]
    assert len(of_genre) >= 6, f"{len(of_genre)}/10 {genre}: {[movies[i]['title'] for i in listed]}"
    # Each one explained by the films the user rated, and rated as a fan of them would.
    assert all(row.because and set(row.because) <= set(rated) for row in found.items)


def test_the_popular_list_is_not_the_genre_list(real):
    # The check above would pass trivially if every list were full of animation.
    recommender, movies = real
    popular = [row.item_id for row in recommender.popular_items(10)]
    assert sum("Animation" in movies[i]["genres"] for i in popular) <= 3
    assert sum("Horror" in movies[i]["genres"] for i in popular) <= 3
