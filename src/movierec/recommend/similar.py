"""Item-item similarity: the ranker's own, or co-rating for rankers with no notion of likeness.

cos(i, j) = |U_i & U_j| / sqrt(|U_i| |U_j|), U_i being the users who rated i in training.
"""

from __future__ import annotations

import numpy as np
import torch

from movierec.data.ratings import ByUser
from movierec.models.base import Ranker
from movierec.recommend.topk import top_k

CO_RATING = "co-rating"
"""The ``source`` of similar items for rankers without a similarity of their own."""


class CoRating:
    """The training ratings indexed by item, to count co-raters of one item with all others."""

    def __init__(self, history: ByUser, n_items: int) -> None:
        self.history, self.n_items = history, n_items
        self.counts = np.bincount(history.items, minlength=n_items)
        order = np.argsort(history.items, kind="stable")
        self.indptr = np.zeros(n_items + 1, dtype=np.int64)
        np.cumsum(self.counts, out=self.indptr[1:])
        self.raters = history.user_of_entry()[order]

    def cosine(self, item_idx: int) -> np.ndarray:
        """float64 (n_items,): the co-rating cosine of ``item_idx`` with every item (0 where none)."""
        users = self.raters[self.indptr[item_idx] : self.indptr[item_idx + 1]]
        if len(users) == 0:
            return np.zeros(self.n_items)
        _, pos = self.history.positions(users)
        co = np.bincount(self.history.items[pos], minlength=self.n_items).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.counts > 0, co / np.sqrt(len(users) * self.counts.astype(np.float64)), 0.0)


class Similarity:
    """One item's similarity to every other: the ranker's ``similar`` if it has one, else co-rating."""

    def __init__(self, ranker: Ranker, ranker_name: str, history: ByUser, n_items: int) -> None:
        own = type(ranker).similar is not Ranker.similar
        self.ranker = ranker
        self.co_rating = None if own else CoRating(history, n_items)
        self.source = ranker_name if own else CO_RATING
        """What the scores are: the ranker's name, or ``co-rating``."""

    @torch.no_grad()
    def of(self, item_idx: int, device: torch.device) -> np.ndarray:
        """float64 (n_items,): ``item_idx``'s similarity to every item."""
        if self.co_rating is not None:
            return self.co_rating.cosine(item_idx)
        self.ranker.eval()
        return self.ranker.similar(torch.tensor([item_idx], device=device))[0].double().cpu().numpy()

    def nearest(self, item_idx: int, k: int, cold: np.ndarray, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most like ``item_idx`` and their similarities, most similar first.

        Never the item itself, an item in ``cold`` (no training ratings), or one with a
        similarity of 0 or less; ties go to the lower item index.
        """
        sims = self.of(item_idx, device)
        sims[item_idx] = -np.inf
        sims[cold] = -np.inf
        sims[sims <= 0] = -np.inf
        top = top_k(sims, k)
        return top, sims[top]
