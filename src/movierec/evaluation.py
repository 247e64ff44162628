"""Where models meet metrics: score a recommender on held-out ratings, as ratings and as rankings.

Ratings (``evaluate``, ``error_by_activity``, ``rating_distribution``) come from the
recommender's rater; rankings (``evaluate_ranking``) from the lists it shows. The rating
functions take the test predictions once made (``predictions``), so a report that
calls all three predicts the test set once.
"""

from __future__ import annotations

import numpy as np

from movierec import metrics
from movierec.data.ids import distinct
from movierec.data.ratings import Ratings
from movierec.errors import DataError
from movierec.recommend import POPULAR, Recommender


def aligned_indices(recommender: Recommender, test: Ratings) -> tuple[np.ndarray, np.ndarray]:
    """``test``'s users and items as the recommender's indices (UNKNOWN where never seen)."""
    if test.index is recommender.index:
        return test.user_idx.astype(np.int64), test.item_idx.astype(np.int64)
    users = test.index.user_ids[test.user_idx]
    items = test.index.item_ids[test.item_idx]
    return recommender.index.find_many("user", users), recommender.index.find_many("item", items)


def _predictions(recommender: Recommender, test: Ratings, predictions: np.ndarray | None) -> np.ndarray:
    if len(test) == 0:
        raise DataError("the test set is empty; nothing to evaluate", path=test.name)
    if test.implicit:
        raise DataError("this log has no ratings, so RMSE and MAE do not apply; rank with evaluate_ranking")
    return predict_test(recommender, test) if predictions is None else predictions


def predict_test(recommender: Recommender, test: Ratings) -> np.ndarray:
    """The recommender's predictions for ``test``'s pairs, at their times where it has them (sittings)."""
    return recommender.predict_idx(*aligned_indices(recommender, test), test.timestamp)


def evaluate(recommender: Recommender, test: Ratings, *, predictions: np.ndarray | None = None) -> dict:
    """RMSE and MAE of the recommender's predictions on ``test`` (fallbacks included).

    Also reports how many test ratings fell back because their user or item had no
    training ratings (``n_fallback``), so a low score can be traced to cold start.
    """
    pred = _predictions(recommender, test, predictions)
    users, items = aligned_indices(recommender, test)
    known_u = (users >= 0) & (recommender.user_counts[np.maximum(users, 0)] > 0)
    known_i = (items >= 0) & (recommender.item_counts[np.maximum(items, 0)] > 0)
    return {
        "rmse": metrics.rmse(test.rating, pred),
        "mae": metrics.mae(test.rating, pred),
        "n": len(test),
        "n_fallback": int(np.sum(~(known_u & known_i))),
    }


def default_relevance(scale: tuple[float, float]) -> float:
    """The rating from which a test item counts as relevant, when none is given.

    4.0 on five-star scales (MovieLens's 0.5-5 and 1-5); otherwise three quarters of the
    way up the scale (7.75 on 1-10).
    """
    lo, hi = scale
    return 4.0 if hi == 5.0 and lo < 4.0 else lo + 0.75 * (hi - lo)


def relevance_of(ratings: Ratings) -> float:
    """The default relevance for lists scored on a log like ``ratings``: 1 for an implicit log (every row)."""
    return 1.0 if ratings.implicit else default_relevance(ratings.rating_scale())


def evaluate_ranking(
    recommender: Recommender,
    test: Ratings,
    *,
    k: int = 10,
    relevance: float = 4.0,
    max_users: int | None = None,
    seed: int = 0,
) -> dict:
    """Precision, recall, NDCG, MAP and hit rate at ``k``, and catalogue coverage.

    A test item is relevant to its user when rated >= ``relevance``. Every user with a
    relevant test item gets the list ``Recommender.top_n`` shows them, chosen from ALL
    items they did not rate in training (no sampled negatives): the ranker's, ordered
    with the rater's predictions, or the ``popular`` list for users with no training
    ratings (counted in ``n_users_popular``).
    Relevant items the model never saw still count in recall's denominator. With
    ``max_users``, that many users are drawn at random (``seed``) and ``sampled`` says so.
    Coverage is the share of the catalogue in the evaluated users' lists.
    """
    if len(test) == 0:
        raise DataError("the test set is empty; nothing to evaluate", path=test.name)
    _, items = aligned_indices(recommender, test)
    # Users by the test data's own index, so test users the model never saw stay apart
    # (each gets the popular list, as a new user would).
    users = test.user_idx.astype(np.int64)
    relevant = test.rating >= relevance
    users, items = users[relevant], items[relevant]
    eval_users, n_relevant = np.unique(users, return_counts=True)
    if len(eval_users) == 0:
        raise DataError(f"no test rating is >= {relevance:g}, so no item is relevant; lower --relevance")
    sampled = max_users is not None and len(eval_users) > max_users
    if sampled:
        pick = np.sort(np.random.default_rng(seed).choice(len(eval_users), max_users, replace=False))
        eval_users, n_relevant = eval_users[pick], n_relevant[pick]
    n_items = recommender.index.n_items
    # Relevant (user position, item) pairs as one sorted key each, for membership tests.
    pos = np.searchsorted(eval_users, users)
    inside = (pos < len(eval_users)) & (eval_users[np.minimum(pos, len(eval_users) - 1)] == users) & (items >= 0)
    rel_keys = distinct(pos[inside] * n_items + items[inside])
    model_users = eval_users
    if test.index is not recommender.index:
        model_users = recommender.index.find_many("user", test.index.user_ids[eval_users])
    lists = np.full((len(eval_users), k), -1, dtype=np.int64)
    n_popular = 0
    block = 4096
    for s in range(0, len(eval_users), block):
        top = recommender.top_n(model_users[s : s + block], k)
        lists[s : s + block] = top.items
        n_popular += int(np.sum(top.sources == POPULAR))
    keys = np.arange(len(eval_users))[:, None] * n_items + lists
    hits = (lists >= 0) & np.isin(keys, rel_keys)
    scores = metrics.ranking_metrics(hits, n_relevant)
    return {
        "k": k,
        "relevance": relevance,
        **{name: scores[name] for name in ("precision", "recall", "ndcg", "map", "hit_rate")},
        "coverage": metrics.catalogue_coverage(lists, n_items),
        "n_users": len(eval_users),
        "n_users_popular": n_popular,
        "sampled": bool(sampled),
    }


ACTIVITY_EDGES = (10, 30, 100, 300)
"""Upper bounds of the user-activity buckets (training ratings): 1-10, 11-30, 31-100, 101-300, >300."""


def error_by_activity(
    recommender: Recommender,
    test: Ratings,
    edges: tuple[int, ...] = ACTIVITY_EDGES,
    *,
    predictions: np.ndarray | None = None,
) -> list[dict]:
    """RMSE and MAE of test ratings grouped by how many training ratings their user has.

    One row per bucket, in order: ``0`` (no training ratings: the fallback answers),
    ``1-10``, ``11-30``, ``31-100``, ``101-300``, ``>300`` for the default ``edges``. Each row
    has ``bucket``, ``lo``, ``hi`` (None for the last), ``n_users``, ``n`` (test ratings),
    ``rmse`` and ``mae`` (None for an empty bucket).
    """
    pred = _predictions(recommender, test, predictions)
    users, _ = aligned_indices(recommender, test)
    activity = np.where(users >= 0, recommender.user_counts[np.maximum(users, 0)], 0)
    bounds = [(0, 0), *((lo + 1, hi) for lo, hi in zip((0, *edges[:-1]), edges, strict=True)), (edges[-1] + 1, None)]
    rows = []
    for lo, hi in bounds:
        mask = (activity >= lo) & (activity <= (hi if hi is not None else np.iinfo(np.int64).max))
        name = "0" if hi == 0 else (f">{lo - 1}" if hi is None else f"{lo}-{hi}")
        n = int(mask.sum())
        rows.append(
            {
                "bucket": name,
                "lo": lo,
                "hi": hi,
                "n_users": int(len(np.unique(users[mask]))) if n else 0,
                "n": n,
                "rmse": metrics.rmse(test.rating[mask], pred[mask]) if n else None,
                "mae": metrics.mae(test.rating[mask], pred[mask]) if n else None,
            }
        )
    return rows


def rating_distribution(recommender: Recommender, test: Ratings, *, predictions: np.ndarray | None = None) -> dict:
    """Histograms of the test ratings and of the predictions for them, over the rating scale.

    Bins are centred on the scale's steps: ``lo, lo + step, ..., hi``, where ``step`` is the
    smallest gap between distinct ratings seen (0.5 for MovieLens half stars), at least
    1/50 of the scale. A prediction counts in the bin nearest to it. Returns ``bins``
    (centres), ``test`` and ``predicted`` (counts).
    """
    pred = _predictions(recommender, test, predictions)
    lo, hi = recommender.scale
    values = np.unique(np.concatenate([test.rating.astype(np.float64), [lo, hi]]))
    gaps = np.diff(values)
    step = max(float(gaps.min()) if len(gaps) else 1.0, (hi - lo) / 50 if hi > lo else 1.0)
    n_bins = int(round((hi - lo) / step)) + 1
    centres = lo + step * np.arange(n_bins)

    def counts(x: np.ndarray) -> list[int]:
        bins = np.clip(np.rint((np.asarray(x, dtype=np.float64) - lo) / step), 0, n_bins - 1).astype(np.int64)
        return np.bincount(bins, minlength=n_bins).tolist()

    return {"bins": [round(float(c), 6) for c in centres], "test": counts(test.rating), "predicted": counts(pred)}


def ranking_caveat(trained_items: np.ndarray, test: Ratings, k: int) -> str | None:
    """Why the ranking metrics on ``test`` cannot tell models apart, or None when they can.

    ``trained_items`` are the raw ids of the items rated in training. Two logs make every
    model score alike, whatever it learned: a catalogue no longer than a list (every list
    holds every unrated item), and test items no one rated in training (no model can
    rank an item it never saw: a log of one user, or of items each rated once).
    """
    n_items = len(trained_items)
    if n_items <= k:
        return (
            f"training rated {n_items} item(s), no more than the list length {k}: each list holds every item its user "
            "has not rated, so recall and hit rate are the same for every model; rank on a larger catalogue"
        )
    tested = test.index.item_ids[distinct(test.item_idx)]
    if len(tested) and not np.isin(tested, trained_items).any():
        return (
            "no test item was rated in training (a log of one user, or of items each rated once): no model can rank "
            "an item it never saw, so every NDCG is 0; rank on a log where items have several raters"
        )
    return None
