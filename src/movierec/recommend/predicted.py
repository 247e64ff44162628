"""Predicted ratings of a trained recommender, with the fallback for what the rater never saw.

A user and an item both seen in training get the rater's prediction plus the training
mean, clipped to the rating scale; otherwise the training mean plus each regularised bias
that is known (the baseline's, fitted on the same data), clipped. Unknown ids never fail
a prediction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from movierec.data.ids import UNKNOWN
from movierec.errors import ConfigError
from movierec.models.base import RatingModel, predict_centred

if TYPE_CHECKING:
    from movierec.recommend.recommender import Recommender


def rater_of(rec: Recommender) -> RatingModel:
    """``rec``'s rater; a clear ``ConfigError`` for a recommender trained without ratings."""
    if rec.rater is None:
        raise ConfigError(
            "this recommender was trained on a log without ratings, so it predicts no ratings; "
            "it ranks items (recommend, similar) only"
        )
    return rec.rater


def pairs(
    rec: Recommender, user_idx: np.ndarray, item_idx: np.ndarray, timestamp: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """float32 predicted ratings for index pairs (``UNKNOWN`` allowed), and bool: True where the rater answered.

    With the ratings' times (``timestamp``, seconds), each also takes its sitting's shift.
    """
    rater = rater_of(rec)
    user_idx = np.asarray(user_idx, dtype=np.int64)
    item_idx = np.asarray(item_idx, dtype=np.int64)
    known_u = user_idx != UNKNOWN
    known_i = item_idx != UNKNOWN
    known_u[known_u] = rec.user_counts[user_idx[known_u]] > 0
    known_i[known_i] = rec.item_counts[item_idx[known_i]] > 0
    both = known_u & known_i
    out = np.full(len(user_idx), rec.global_mean, dtype=np.float64)
    out[known_u & ~both] += rec.user_bias[user_idx[known_u & ~both]]
    out[known_i & ~both] += rec.item_bias[item_idx[known_i & ~both]]
    if both.any():
        device = rec.device
        u = torch.from_numpy(user_idx[both]).to(device)
        i = torch.from_numpy(item_idx[both]).to(device)
        out[both] = predict_centred(rater, u, i).double().cpu().numpy() + rec.global_mean
    if rec.sittings is not None and timestamp is not None:
        if len(timestamp) != len(user_idx):
            raise ConfigError(f"{len(user_idx)} pairs but {len(timestamp)} times; give one time per pair")
        out += rec.sittings.shift_of(user_idx, timestamp)
    return np.clip(out, *rec.scale).astype(np.float32), both


def candidates(rec: Recommender, users: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """float64 (B, C): predicted ratings of known users for candidate items (NaN where cand is -1)."""
    rater = rater_of(rec)
    valid = cand >= 0
    device = rec.device
    u = torch.from_numpy(np.repeat(users, cand.shape[1]).reshape(cand.shape)[valid]).to(device)
    i = torch.from_numpy(cand[valid]).to(device)
    out = np.full(cand.shape, np.nan)
    out[valid] = predict_centred(rater, u, i).double().cpu().numpy() + rec.global_mean
    return np.clip(out, *rec.scale)
