"""A trained model with its ids, titles and fallbacks: what users and the server call.

Prediction policy, in raw-id terms:
- a user and an item both seen in training: the model's prediction plus the training
  mean, clipped to the rating scale;
- otherwise (a user or item with no training ratings, or an id never seen at all): the
  training mean plus each regularised bias that is known (user's, item's), clipped.
  The biases come from the baseline model fitted on the same training data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from movierec.data.ids import UNKNOWN, IdIndex
from movierec.errors import MovierecError
from movierec.models.base import RatingModel
from movierec.training import predict_centred


@dataclass
class Recommender:
    """A fitted model and everything needed to answer in raw ids."""

    model: RatingModel
    """The trained network or fitted model (sees indices only)."""
    model_name: str
    """Registry name of the model (``mlp``, ``baseline``, ...)."""
    model_config: object
    """The model's hyperparameters (a frozen dataclass)."""
    index: IdIndex
    """Raw ids of every user and item index."""
    global_mean: float
    """Mean training rating; models predict around it."""
    scale: tuple[float, float]
    """Lowest and highest rating: predictions are clipped to it."""
    user_bias: np.ndarray
    """float32 (n_users,): fallback biases from the baseline fit on the training data."""
    item_bias: np.ndarray
    """float32 (n_items,): as ``user_bias``, for items."""
    seen_indptr: np.ndarray
    """int64 (n_users + 1,): CSR row pointers of the training ratings by user."""
    seen_items: np.ndarray
    """int32 (n_train,): items each user rated in training, sorted within each user."""
    titles: np.ndarray | None = None
    """str (n_items,): titles by item index, where the data has them."""
    info: dict | None = None
    """What the model was trained on and how (dataset, split, train config): for reports."""

    def __post_init__(self) -> None:
        # Derived once: predict and recommend consult them on every call.
        self.user_counts = np.diff(self.seen_indptr)
        self.item_counts = np.bincount(self.seen_items, minlength=self.index.n_items)

    def seen(self, user_idx: int) -> np.ndarray:
        """Item indices ``user_idx`` rated in training."""
        return self.seen_items[self.seen_indptr[user_idx] : self.seen_indptr[user_idx + 1]]

    def predict_idx(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Predicted ratings for index pairs; ``UNKNOWN`` (-1) indices take the fallback."""
        user_idx = np.asarray(user_idx, dtype=np.int64)
        item_idx = np.asarray(item_idx, dtype=np.int64)
        known_u = user_idx != UNKNOWN
        known_i = item_idx != UNKNOWN
        known_u[known_u] = self.user_counts[user_idx[known_u]] > 0
        known_i[known_i] = self.item_counts[item_idx[known_i]] > 0
        both = known_u & known_i
        out = np.full(len(user_idx), self.global_mean, dtype=np.float64)
        out[known_u & ~both] += self.user_bias[user_idx[known_u & ~both]]
        out[known_i & ~both] += self.item_bias[item_idx[known_i & ~both]]
        if both.any():
            device = next(self.model.parameters()).device
            u = torch.from_numpy(user_idx[both]).to(device)
            i = torch.from_numpy(item_idx[both]).to(device)
            out[both] = predict_centred(self.model, u, i).double().cpu().numpy() + self.global_mean
        return np.clip(out, *self.scale).astype(np.float32)

    def predict(self, user_ids, item_ids) -> np.ndarray:
        """Predicted ratings for raw id pairs; unknown ids get the documented fallback."""
        u = self.index.user_idx(np.asarray(user_ids), strict=False)
        i = self.index.item_idx(np.asarray(item_ids), strict=False)
        return self.predict_idx(u, i)

    @torch.no_grad()
    def recommend(self, user_id, k: int = 10, *, exclude_seen: bool = True) -> list[dict]:
        """Top-``k`` items for a known user, best first: ``item_id``, ``title``, ``score``.

        Items the user rated in training are left out unless ``exclude_seen`` is False;
        ties go to the lower item index, so the list is deterministic.
        """
        user_idx = int(self.index.user_idx([user_id])[0])
        if self.user_counts[user_idx] == 0:
            raise MovierecError(f"user {user_id} has no training ratings; they need ratings to get recommendations")
        scores = self._score_all(user_idx)
        if exclude_seen:
            scores[self.seen(user_idx)] = -np.inf
        top = _top_k(scores, k)
        return [self._item_row(int(i), float(scores[i])) for i in top]

    def _score_all(self, user_idx: int) -> np.ndarray:
        """Predicted rating of every item for one user; items unseen in training get the fallback."""
        device = next(self.model.parameters()).device
        items = torch.arange(self.index.n_items, device=device)
        u = torch.tensor([user_idx], device=device)
        self.model.eval()
        centred = torch.cat([self.model.score(u, items[s : s + 4096])[0] for s in range(0, len(items), 4096)])
        scores = centred.double().cpu().numpy() + self.global_mean
        cold = self.item_counts == 0
        scores[cold] = self.global_mean + self.user_bias[user_idx] + self.item_bias[cold]
        return np.clip(scores, *self.scale)

    def _item_row(self, item_idx: int, score: float) -> dict:
        item_id = self.index.item_ids[item_idx]
        return {
            "item_id": item_id.item() if isinstance(item_id, np.generic) else item_id,
            "title": None if self.titles is None else str(self.titles[item_idx]),
            "score": round(score, 4),
        }


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest finite scores, best first; ties to the lower index."""
    finite = np.flatnonzero(np.isfinite(scores))
    k = min(k, len(finite))
    if k == 0:
        return finite[:0]
    values = scores[finite]
    kth = -np.partition(-values, k - 1)[k - 1]
    above = finite[values > kth]
    tied = finite[values == kth][: k - len(above)]  # finite is ascending: lowest indices win ties
    part = np.concatenate([above, tied])
    # Score descending, then index ascending: lexsort's last key is primary.
    return part[np.lexsort((part, -scores[part]))]
