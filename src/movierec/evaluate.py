"""Where models meet metrics: score a recommender on held-out ratings."""

from __future__ import annotations

import numpy as np

from movierec import metrics
from movierec.data.ratings import Ratings
from movierec.errors import DataError
from movierec.recommend import Recommender


def aligned_indices(recommender: Recommender, test: Ratings) -> tuple[np.ndarray, np.ndarray]:
    """``test``'s users and items as the recommender's indices (UNKNOWN where never seen)."""
    if test.index is recommender.index:
        return test.user_idx.astype(np.int64), test.item_idx.astype(np.int64)
    users = test.index.user_ids[test.user_idx]
    items = test.index.item_ids[test.item_idx]
    return recommender.index.user_idx(users, strict=False), recommender.index.item_idx(items, strict=False)


def evaluate(recommender: Recommender, test: Ratings) -> dict:
    """RMSE and MAE of the recommender's predictions on ``test`` (fallbacks included).

    Also reports how many test ratings fell back because their user or item had no
    training ratings (``n_fallback``), so a low score can be traced to cold start.
    """
    if len(test) == 0:
        raise DataError("the test set is empty; nothing to evaluate", path=test.name)
    users, items = aligned_indices(recommender, test)
    pred = recommender.predict_idx(users, items)
    known_u = (users >= 0) & (recommender.user_counts[np.maximum(users, 0)] > 0)
    known_i = (items >= 0) & (recommender.item_counts[np.maximum(items, 0)] > 0)
    return {
        "rmse": metrics.rmse(test.rating, pred),
        "mae": metrics.mae(test.rating, pred),
        "n": len(test),
        "n_fallback": int(np.sum(~(known_u & known_i))),
    }
