"""The references a trained recommender is measured against, and falls back on: popular lists, baseline ratings."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from movierec import models
from movierec.data.ratings import Ratings
from movierec.models.baseline import Baseline, fit_biases
from movierec.models.popular import Popular, PopularConfig, popularity
from movierec.recommend import ListConfig, Recommender


def popular_of(recommender: Recommender) -> Recommender:
    """The same recommender listing ``popular`` for everyone: the list any ranker must beat."""
    ranker = Popular(recommender.index.n_items)
    floor = float(recommender.ranker.rating_floor)
    score = popularity(
        recommender.global_mean, recommender.item_bias, recommender.item_counts, recommender.scale, floor
    )
    ranker.item_score.copy_(torch.from_numpy(score).float())
    ranker.rating_max.copy_(recommender.ranker.rating_max)
    ranker.rating_floor.fill_(floor)
    return replace(
        recommender,
        ranker=ranker,
        ranker_name="popular",
        ranker_config=PopularConfig(),
        lists=ListConfig(gate=False, discount=0.0),
    )


def baseline_of(recommender: Recommender) -> Recommender:
    """The same recommender with its rater swapped for the fallback biases (the baseline)."""
    spec = models.get("baseline")
    base = Baseline(recommender.index.n_users, recommender.index.n_items)
    with torch.no_grad():
        base.user_bias.copy_(torch.from_numpy(recommender.user_bias))
        base.item_bias.copy_(torch.from_numpy(recommender.item_bias))
    # The sittings' weight was fitted to the rater's residuals, not the baseline's.
    return replace(
        recommender, rater=base.eval(), rater_name="baseline", rater_config=spec.config_type(), sittings=None
    )


def fallback_biases(fit_part: Ratings, global_mean: float) -> tuple[np.ndarray, np.ndarray]:
    """The baseline's user and item biases on ``fit_part``: what a prediction falls back on for an id half known."""
    return fit_biases(
        fit_part.user_idx,
        fit_part.item_idx,
        fit_part.rating.astype(np.float64) - global_mean,
        fit_part.n_users,
        fit_part.n_items,
    )
