"""A ratings log held as index columns, with the id index and titles that go with it."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from movierec.data.ids import IdIndex


@dataclass(frozen=True)
class Ratings:
    """Explicit ratings as parallel columns over one ``IdIndex``.

    Subsets made by a split share the index of the whole log, so a model trained on
    one part can be scored on another without re-mapping ids.
    """

    user_idx: np.ndarray
    """int32, shape (n,): the rater's index in ``index.user_ids``."""
    item_idx: np.ndarray
    """int32, shape (n,): the item's index in ``index.item_ids``."""
    rating: np.ndarray
    """float32, shape (n,): the rating as given."""
    timestamp: np.ndarray | None
    """int64 seconds since the epoch, shape (n,), or None when the source has no times."""
    index: IdIndex
    """Raw ids for every index value."""
    titles: np.ndarray | None = None
    """str, shape (n_items,): the title of each item, or None when the source has none."""
    name: str = "ratings"
    """What the data is called in reports (a release name or a file name)."""

    def __len__(self) -> int:
        return len(self.rating)

    @property
    def n_users(self) -> int:
        return self.index.n_users

    @property
    def n_items(self) -> int:
        return self.index.n_items

    def take(self, rows: np.ndarray) -> Ratings:
        """The ratings at ``rows`` (positions or a boolean mask), over the same index."""
        return replace(
            self,
            user_idx=self.user_idx[rows],
            item_idx=self.item_idx[rows],
            rating=self.rating[rows],
            timestamp=None if self.timestamp is None else self.timestamp[rows],
        )

    @classmethod
    def from_ids(
        cls,
        user_ids: np.ndarray,
        item_ids: np.ndarray,
        rating: np.ndarray,
        timestamp: np.ndarray | None = None,
        *,
        titles: dict | None = None,
        name: str = "ratings",
    ) -> Ratings:
        """Index raw id columns; ``titles`` maps raw item id to title where known."""
        index, user_idx, item_idx = IdIndex.build(np.asarray(user_ids), np.asarray(item_ids))
        title_col = None
        if titles:
            title_col = np.array([titles.get(_plain(i), "") for i in index.item_ids], dtype=object).astype(str)
        return cls(
            user_idx=user_idx,
            item_idx=item_idx,
            rating=np.asarray(rating, dtype=np.float32),
            timestamp=None if timestamp is None else np.asarray(timestamp, dtype=np.int64),
            index=index,
            titles=title_col,
            name=name,
        )

    def rating_scale(self) -> tuple[float, float]:
        """The lowest and highest rating present: predictions are clipped to this range."""
        return float(self.rating.min()), float(self.rating.max())


def _plain(value: object) -> object:
    """numpy scalars to Python ones, so dict look-ups by raw id work for ints and strs."""
    return value.item() if isinstance(value, np.generic) else value
