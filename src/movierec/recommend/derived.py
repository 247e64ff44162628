"""What a recommender derives from its training ratings: built once, shared by every variant of it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.data.ids import IdIndex
from movierec.data.ratings import ByUser
from movierec.recommend.catalogue import Catalogue


@dataclass(frozen=True)
class Derived:
    """Counts and the title catalogue of one training history; ``Recommender`` keeps it across ``replace``."""

    history: ByUser
    """The history it was derived from (the same object: a replaced history derives anew)."""
    titles: np.ndarray | None
    """The titles it was derived from."""
    user_counts: np.ndarray
    """int (n_users,): training ratings per user."""
    item_counts: np.ndarray
    """int (n_items,): training ratings per item."""
    catalogue: Catalogue
    """Raw ids, titles and counts by item index."""
    cold_items: np.ndarray
    """Item indices no one rated in training: never listed."""

    @classmethod
    def of(cls, history: ByUser, index: IdIndex, titles: np.ndarray | None) -> Derived:
        """Derive from ``history`` over ``index``."""
        item_counts = np.bincount(history.items, minlength=index.n_items)
        catalogue = Catalogue(index.item_ids, titles, item_counts)
        return cls(history, titles, history.counts(), item_counts, catalogue, np.flatnonzero(item_counts == 0))

    def holds(self, history: ByUser, titles: np.ndarray | None) -> bool:
        """True when this was derived from these very objects."""
        return self.history is history and self.titles is titles
