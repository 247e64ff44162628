"""Co-rating similarity: for rankers with no notion of item likeness of their own.

cos(i, j) = |U_i & U_j| / sqrt(|U_i| |U_j|), U_i being the users who rated i in training.
"""

from __future__ import annotations

import numpy as np

from movierec.data.ratings import ByUser


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
