"""A user the models have not seen, from a few (item, rating) pairs: checked ratings and a rater for them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from movierec.data.ids import UNKNOWN, IdIndex
from movierec.errors import ConfigError
from movierec.models.base import RatingModel, UserRows
from movierec.models.baseline import BaselineConfig, shrunk_bias
from movierec.recommend import explain
from movierec.recommend.lists import BIAS_FALLBACK, FOLD_IN, ItemList, Predict, check_length

if TYPE_CHECKING:
    from movierec.recommend.recommender import Recommender


def rated_twice(item_ids: Iterable[object]) -> list:
    """The ids given more than once, first seen first: the CLI and the server refuse them (rate each item once)."""
    return [item for item, n in Counter(item_ids).items() if n > 1]


def parse_ratings(
    index: IdIndex, scale: tuple[float, float], ratings: Sequence[tuple[object, float]]
) -> tuple[dict[int, float], list]:
    """Known item index -> rating (a repeated item keeps its last), and the unknown item ids.

    A rating that is not a number or lies outside ``scale`` is an error naming the item.
    """
    lo, hi = scale
    known: dict[int, float] = {}
    ignored = []
    for item_id, rating in ratings:
        try:
            r = float(rating)
        except (TypeError, ValueError):
            raise ConfigError(f"rating {rating!r} of item {item_id!r} is not a number") from None
        if lo == hi and r != lo:  # an implicit log's "rating" is its one value: seen
            raise ConfigError(
                f"rating {rating!r} of item {item_id!r}: this model was trained on a log without ratings (plays, "
                f"clicks), so it has no rating scale; give each item the user chose as ITEM={lo:g}"
            )
        if not np.isfinite(r) or not lo <= r <= hi:
            raise ConfigError(f"rating {rating!r} of item {item_id!r} is outside the rating scale {lo:g}..{hi:g}")
        idx = index.find("item", item_id)
        if idx == UNKNOWN:
            ignored.append(item_id)
        else:
            known[idx] = r
    return known, ignored


def rater_of(
    rater: RatingModel | None,
    rated: np.ndarray,
    values: np.ndarray,
    global_mean: float,
    item_bias: np.ndarray,
    scale: tuple[float, float],
    device: torch.device,
) -> tuple[Predict, str | None]:
    """The new user's predicted ratings as a function of candidate items, and its ``rating_source``.

    The rater's own fold-in where it has one (``fold-in``); otherwise the mean plus the
    item's bias and a bias fitted to the user's ratings (``bias-fallback``); no rater: NaN.
    """
    if rater is None:
        return (lambda cand: np.full(cand.shape, np.nan)), None
    centred = values - global_mean
    # The bias-only fit: the answer for raters that cannot fold in.
    b_u = shrunk_bias(centred - item_bias[rated], BaselineConfig().reg_user)
    if rater.training:
        rater.eval()
    scorer = rater.fold_in(torch.from_numpy(rated).to(device), torch.from_numpy(centred.astype(np.float32)).to(device))

    def predict(cand: np.ndarray) -> np.ndarray:
        out = np.full(cand.shape, np.nan)
        valid = cand >= 0
        idx = cand[valid]
        if scorer is None:
            out[valid] = global_mean + b_u + item_bias[idx]
        else:
            out[valid] = scorer(torch.from_numpy(idx).to(device)).double().cpu().numpy() + global_mean
        return np.clip(out, *scale)

    return predict, (BIAS_FALLBACK if scorer is None else FOLD_IN)


@torch.no_grad()
def new_user_list(
    rec: Recommender, ratings: Sequence[tuple[object, float]], k: int, exclude: Iterable[object]
) -> ItemList:
    """``Recommender.recommend_new_user``: the known-user path run from the given ratings."""
    check_length(k)
    known, ignored = parse_ratings(rec.index, rec.scale, ratings)
    excluded = set(known) | {i for i in (rec.index.find("item", x) for x in exclude) if i != UNKNOWN}
    if not known:
        return replace(rec.popular_items(k, excluded), ignored=tuple(ignored))
    rated = np.fromiter(known, dtype=np.int64)
    values = np.fromiter(known.values(), dtype=np.float64)
    device = rec.device
    scores = rec.scores(UserRows.one(torch.from_numpy(rated).to(device), torch.from_numpy(values).float().to(device)))
    scores[0, np.fromiter(excluded, dtype=np.int64, count=len(excluded))] = -np.inf
    predict, rating_source = rater_of(rec.rater, rated, values, rec.global_mean, rec.item_bias, rec.scale, device)
    items, shown = (rows[0] for rows in rec.ordered(scores, k, predict))
    because = explain.because(rec.ranker, rec.catalogue.item_ids, items[items >= 0], rated, values, device)
    return replace(rec.listed(FOLD_IN, items, shown, rating_source, because), ignored=tuple(ignored))
