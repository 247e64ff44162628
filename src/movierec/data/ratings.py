"""A ratings log held as index columns, with the id index and titles that go with it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np

from movierec.data.ids import IdIndex, distinct

MAX_GENRES = 500
"""Most distinct genres a catalogue may have for ``genre_matrix`` (500 x 87,585 items: 175 MB)."""


@dataclass(frozen=True)
class Ratings:
    """A ratings log as parallel columns over one ``IdIndex``.

    Subsets made by a split share the index of the whole log, so a model trained on
    one part can be scored on another without re-mapping ids. A log with no rating
    column (plays, clicks, purchases) is ``implicit``: every row is a positive, held as
    a rating of 1.0, and rankers alone apply.
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
    genres: np.ndarray | None = None
    """str, shape (n_items,): each item's genres joined by ``|`` ("" for none), or None when the source has none."""
    name: str = "ratings"
    """What the data is called in reports (a release name or a file name)."""
    implicit: bool = False
    """True for a log without ratings: each row only says the user chose the item."""
    scale: tuple[float, float] | None = None
    """The rating scale as declared (``--rating-range``, or a MovieLens release's own), or None:
    the lowest and highest rating present then stand for it."""
    step: float | None = None
    """The declared scale's grid (0.5 for half stars), or None when it has none or none was declared."""

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
        genres: dict | None = None,
        name: str = "ratings",
    ) -> Ratings:
        """Index raw id columns; ``titles`` maps raw item id to title, ``genres`` raw item id to
        its genres (``|``-joined), where known."""
        index, user_idx, item_idx = IdIndex.build(np.asarray(user_ids), np.asarray(item_ids))

        def column(by_id: dict | None) -> np.ndarray | None:
            if not by_id:
                return None
            return np.array([by_id.get(_python_scalar(i), "") for i in index.item_ids], dtype=object).astype(str)

        return cls(
            user_idx=user_idx,
            item_idx=item_idx,
            rating=np.asarray(rating, dtype=np.float32),
            timestamp=None if timestamp is None else np.asarray(timestamp, dtype=np.int64),
            index=index,
            titles=column(titles),
            genres=column(genres),
            name=name,
        )

    def genre_matrix(self) -> np.ndarray | None:
        """float32 (n_genres, n_items): 1 where the item has the genre; None without genres.

        Genres are ordered by name, so the same catalogue always gives the same rows. More
        than ``MAX_GENRES`` distinct values are not a genre list (MovieLens has 20) but ids or
        free text, whose dense matrix could take gigabytes: None then too.
        """
        if self.genres is None:
            return None
        lists = [[name for name in (g.strip() for g in genres.split("|")) if name] for genres in self.genres.tolist()]
        names = sorted({g for genres in lists for g in genres})
        if not names or len(names) > MAX_GENRES:
            return None
        row = {name: r for r, name in enumerate(names)}
        matrix = np.zeros((len(names), self.n_items), dtype=np.float32)
        for item, genres in enumerate(lists):
            matrix[[row[g] for g in genres], item] = 1.0
        return matrix

    def rating_scale(self) -> tuple[float, float]:
        """The scale as declared, else the lowest and highest rating present: predictions are clipped to it."""
        if self.scale is not None:
            return self.scale
        return float(self.rating.min()), float(self.rating.max())

    def rating_floor(self) -> float:
        """Where a rating would weigh nothing as evidence of interest: one grid step below the scale's lowest.

        The step is the declared one, else the smallest gap between two ratings present (1
        when there is only one value). On MovieLens's scales (0.5-5 in half stars, 1-5 in
        whole ones) the floor is 0, so a ranker's weights are r / r_max; on any shift of a
        scale the floor shifts with it, so the weights do not change.
        """
        lo = self.rating_scale()[0]
        step = self.step
        if step is None:
            values = distinct(self.rating)
            step = float(np.diff(values).min()) if len(values) > 1 else 1.0
        return lo - step

    def by_user(self, *more: Ratings) -> ByUser:
        """These ratings (and ``more`` over the same index) grouped by user."""
        parts = (self, *more)
        return ByUser.build(
            np.concatenate([p.user_idx for p in parts]),
            np.concatenate([p.item_idx for p in parts]),
            np.concatenate([p.rating for p in parts]),
            self.n_users,
        )


@dataclass(frozen=True)
class ByUser:
    """Ratings grouped by user (CSR): user u's are ``items[indptr[u]:indptr[u + 1]]``, items ascending.

    The one grouping of training ratings: the recommender's history, what rankers score
    from, and what lists leave out.
    """

    indptr: np.ndarray
    """int64 (n_users + 1,): where each user's ratings start; indptr[0] == 0, indptr[-1] == nnz."""
    items: np.ndarray
    """int32 (nnz,): the rated items, ascending within each user."""
    ratings: np.ndarray
    """float32 (nnz,): the rating of each entry."""

    @classmethod
    def build(cls, user_idx: np.ndarray, item_idx: np.ndarray, rating: np.ndarray, n_users: int) -> ByUser:
        order = np.lexsort((item_idx, user_idx))
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(user_idx, minlength=n_users), out=indptr[1:])
        return cls(indptr, item_idx[order].astype(np.int32), rating[order].astype(np.float32))

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    def counts(self) -> np.ndarray:
        """int64 (n_users,): ratings per user."""
        return np.diff(self.indptr)

    def items_of(self, user: int) -> np.ndarray:
        return self.items[self.indptr[user] : self.indptr[user + 1]]

    def ratings_of(self, user: int) -> np.ndarray:
        return self.ratings[self.indptr[user] : self.indptr[user + 1]]

    def positions(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, position) of every entry of ``users``: row numbers count within ``users``."""
        starts = self.indptr[users]
        lengths = self.indptr[users + 1] - starts
        rows = np.repeat(np.arange(len(users)), lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return rows, np.repeat(starts, lengths) + offsets

    def rows_of(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ratings of ``users`` alone, as CSR: indptr (len(users) + 1,), int64 items, float32 ratings."""
        _, pos = self.positions(users)
        indptr = np.zeros(len(users) + 1, dtype=np.int64)
        np.cumsum(self.indptr[users + 1] - self.indptr[users], out=indptr[1:])
        return indptr, self.items[pos].astype(np.int64), self.ratings[pos]

    def user_of_entry(self) -> np.ndarray:
        """int64 (nnz,): each entry's user."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), self.counts())


def fingerprint(index: IdIndex, history: ByUser) -> str:
    """SHA-256 of training ratings by content: the raw ids, and each user's items and ratings.

    Raw ids are sorted and ``ByUser`` orders each user's items, so the same ratings in any
    row order give the same digest, and any changed, added or removed rating another.
    """
    digest = hashlib.sha256()
    for ids in (index.user_ids, index.item_ids):
        if ids.dtype.kind in "iu":
            digest.update(b"int:" + np.ascontiguousarray(ids, dtype="<i8").tobytes())
        else:
            digest.update(b"str:" + "\x00".join(ids.tolist()).encode("utf-8", "surrogatepass") + b"\x00")
    digest.update(np.ascontiguousarray(history.indptr, dtype="<i8").tobytes())
    digest.update(np.ascontiguousarray(history.items, dtype="<i4").tobytes())
    digest.update(np.ascontiguousarray(history.ratings, dtype="<f4").tobytes())
    return digest.hexdigest()


def _python_scalar(value: object) -> object:
    """numpy scalars to Python ones, so dict look-ups by raw id work for ints and strs."""
    return value.item() if isinstance(value, np.generic) else value
