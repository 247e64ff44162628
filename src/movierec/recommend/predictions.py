"""What a recommender answers from its rater and its training ratings: raw ids and predicted ratings.

Predicted ratings (``predict``): a user and an item both seen in training get the
rater's prediction plus the training mean, clipped to the rating scale; otherwise the
training mean plus each regularised bias that is known (the baseline's, fitted on the
same data), clipped. Unknown ids never fail a prediction.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import torch

from movierec.data.ids import UNKNOWN, IdIndex
from movierec.errors import ConfigError, MovierecError
from movierec.models.base import Ranker, RatingModel, predict_centred
from movierec.recommend.catalogue import Catalogue
from movierec.recommend.derived import Derived
from movierec.sittings import Sittings


class UnknownIdError(MovierecError):
    """A raw user or item id the model has never seen, where it must know it."""

    def __init__(self, kind: str, raw: object) -> None:
        super().__init__(f"unknown {kind} id {raw!r}: the model was not trained with it")
        self.kind, self.raw = kind, raw


class Predictions:
    """The part of ``Recommender`` that needs no ranker's lists: ids, counts and predicted ratings."""

    # Fields of the ``Recommender`` dataclass, named here for the methods below.
    ranker: Ranker
    rater: RatingModel | None
    index: IdIndex
    global_mean: float
    scale: tuple[float, float]
    user_bias: np.ndarray
    item_bias: np.ndarray
    sittings: Sittings | None
    derived: Derived | None

    @property
    def _derived(self) -> Derived:
        assert self.derived is not None  # set by __post_init__
        return self.derived

    @property
    def user_counts(self) -> np.ndarray:
        """int (n_users,): training ratings per user."""
        return self._derived.user_counts

    @property
    def item_counts(self) -> np.ndarray:
        """int (n_items,): training ratings per item."""
        return self._derived.item_counts

    @property
    def catalogue(self) -> Catalogue:
        """Raw ids, titles and training counts by item index."""
        return self._derived.catalogue

    # --- ids ----------------------------------------------------------------------------

    def user_index(self, user_id: object) -> int:
        """The index of raw ``user_id``; ``UnknownIdError`` if the model never saw it."""
        return self._known("user", user_id)

    def item_index(self, item_id: object) -> int:
        """The index of raw ``item_id``; ``UnknownIdError`` if the model never saw it."""
        return self._known("item", item_id)

    def user_id(self, user_idx: int) -> object:
        """The raw id of ``user_idx`` as a plain Python value."""
        return self.index.user_ids[user_idx].item()

    def item_id(self, item_idx: int) -> object:
        """The raw id of ``item_idx`` as a plain Python value."""
        return self.catalogue.item_ids[item_idx]

    def _known(self, kind: str, raw: object) -> int:
        idx = self.index.find(kind, raw)
        if idx == UNKNOWN:
            raise UnknownIdError(kind, raw.item() if isinstance(raw, np.generic) else raw)
        return idx

    # --- ratings --------------------------------------------------------------------------

    @property
    def predicts_ratings(self) -> bool:
        """False for a recommender trained on a log without ratings (plays, clicks)."""
        return self.rater is not None

    def predict_idx(
        self, user_idx: np.ndarray, item_idx: np.ndarray, timestamp: np.ndarray | None = None
    ) -> np.ndarray:
        """Predicted ratings for index pairs; ``UNKNOWN`` (-1) indices take the fallback.

        With the ratings' times (``timestamp``, seconds), each also takes its sitting's shift.
        """
        return self._predict_idx(user_idx, item_idx, timestamp)[0]

    def _predict_idx(
        self, user_idx: np.ndarray, item_idx: np.ndarray, timestamp: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        rater = self._rater()
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
            u = torch.from_numpy(user_idx[both]).to(self.device)
            i = torch.from_numpy(item_idx[both]).to(self.device)
            out[both] = predict_centred(rater, u, i).double().cpu().numpy() + self.global_mean
        if self.sittings is not None and timestamp is not None:
            if len(timestamp) != len(user_idx):
                raise ConfigError(f"{len(user_idx)} pairs but {len(timestamp)} times; give one time per pair")
            out += self.sittings.shift_of(user_idx, timestamp)
        return np.clip(out, *self.scale).astype(np.float32), both

    def predict(self, user_ids: object, item_ids: object) -> np.ndarray:
        """Predicted ratings for raw id pairs; unknown ids get the documented fallback."""
        return self.predict_with_source(user_ids, item_ids)[0]

    def predict_with_source(self, user_ids: object, item_ids: object) -> tuple[np.ndarray, np.ndarray]:
        """As ``predict``, plus bool (n,): True where the rater answered, False where the fallback did."""
        u = self.index.find_many("user", user_ids)
        i = self.index.find_many("item", item_ids)
        if u.shape != i.shape:
            raise ConfigError(f"{len(u)} user ids but {len(i)} item ids; give them in pairs")
        return self._predict_idx(u, i)

    def _rater(self) -> RatingModel:
        if self.rater is None:
            raise ConfigError(
                "this recommender was trained on a log without ratings, so it predicts no ratings; "
                "it ranks items (recommend, similar) only"
            )
        return self.rater

    def predict_known(self, users: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """float64 (B, C): predicted ratings of known users for candidate items (NaN where cand is -1)."""
        rater = self._rater()
        valid = cand >= 0
        u = torch.from_numpy(np.repeat(users, cand.shape[1]).reshape(cand.shape)[valid]).to(self.device)
        i = torch.from_numpy(cand[valid]).to(self.device)
        out = np.full(cand.shape, np.nan)
        out[valid] = predict_centred(rater, u, i).double().cpu().numpy() + self.global_mean
        return np.clip(out, *self.scale)

    @property
    def _cold_items(self) -> np.ndarray:
        return self._derived.cold_items

    @cached_property
    def device(self) -> torch.device:
        """Where the models' tensors live: their inputs go there."""
        for module in (self.rater, self.ranker):
            for tensor in [*module.parameters(), *module.buffers()] if module is not None else []:
                return tensor.device
        return torch.device("cpu")
