"""A user the models have not seen, from a few (item, rating) pairs: checked ratings and a rater for them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from movierec.data.ids import UNKNOWN, IdIndex
from movierec.errors import ConfigError
from movierec.models.base import RatingModel
from movierec.models.baseline import BaselineConfig, shrunk_bias
from movierec.recommend.lists import BIAS_FALLBACK, FOLD_IN, Predict


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
