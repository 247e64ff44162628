"""What a list is made of: its settings, its one type, and the one rule that orders it.

Every path gives an ``ItemList`` of ``ListItem``s (a known user, a new user, the popular
list, similar items, many users at once); ``IndexLists`` is the same lists for a batch of
users in index space, before ids and titles, for metrics and files.

Lists say which path made them (``source``):

- ``model``: a user with training ratings. The ranker scores every item from those
  ratings, each score divided by ``(1 + n_i) ** ListConfig.discount`` (n_i the item's
  training ratings: the most popular items otherwise crowd every list); its
  ``ListConfig.candidates`` best are then ordered by that score times P(like), a
  logistic curve of the rater's predicted rating, so an item the user would likely
  rate low drops down the list. Items the user rated in training
  are left out unless asked for; items no one rated in training are never listed.
- ``fold-in``: a user the models have not seen, given as (item, rating) pairs: the same
  path from those ratings (rankers are functions of a user's ratings), no retraining.
- ``popular``: a user with no usable ratings gets ``models.popular``'s list, the same
  for everyone, and says so.

Every listed item carries ``rating``, what the user would likely give it, and
``rating_source``: ``model`` (the rater), ``fold-in`` (the rater's fold-in of a new
user), ``bias-fallback`` (a rater that cannot fold in: the mean plus the item's bias and
a bias fitted to the user's ratings) or ``popular`` (the item's damped mean rating,
what a user with no ratings is predicted to give). A recommender trained on a log
without ratings has no rater: ``rating`` is None. Similar-item lists carry ``score``, the
similarity, instead; their ``source`` names the similarity (the ranker's, or ``co-rating``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from movierec.errors import ConfigError
from movierec.recommend.topk import top_k_rows

MODEL, FOLD_IN, BIAS_FALLBACK, POPULAR = "model", "fold-in", "bias-fallback", "popular"
"""The ``source`` values of lists and ``rating_source`` values of listed items."""
Predict = Callable[[np.ndarray], np.ndarray]
"""Candidate items (B, C), -1 padded -> float64 (B, C) predicted ratings (NaN where padded)."""


MAX_K = 1000
"""The longest list one request asks for, per user (the CLI's and the server's cap)."""
MAX_CANDIDATES = 10_000
"""Most candidates the rater may reorder: each list rates this many items (a forged 10^15 would not fit)."""


@dataclass(frozen=True)
class ListConfig:
    """How a list is made from the ranker's scores and the rater's predicted ratings."""

    discount: float = 0.2
    """Popularity discount: positive ranker scores are divided by (1 + n_i) ** discount. Chosen
    on ml-latest-small's validation parts (0, 0.1, 0.2, 0.3 tried; bench/NOTES.md)."""
    candidates: int = 50
    """The ranker's best items that the rater's predictions may reorder (at least k are taken)."""
    gate: bool = True
    """Multiply each candidate's ranker score by P(like) from the predicted rating; False: ranker order."""
    like_at: float = 0.55
    """Where P(like) is one half, as a share of the rating scale (2.975 on 0.5-5)."""
    softness: float = 0.11
    """Width of P(like)'s logistic curve, as a share of the rating scale (0.495 on 0.5-5)."""

    def __post_init__(self) -> None:
        if (
            not 1 <= self.candidates <= MAX_CANDIDATES
            or not self.softness > 0
            or not 0 <= self.like_at <= 1
            or not 0 <= self.discount <= 2
        ):
            raise ConfigError(
                f"candidates must be within 1..{MAX_CANDIDATES:,}, softness > 0, like_at within 0..1 "
                "and discount within 0..2"
            )


@dataclass(frozen=True)
class ListItem:
    """One listed item: what every list, for any user or item, says about it."""

    item_id: object
    """The item's raw id, as a plain Python value."""
    title: str | None
    """Its title (None when the data has no titles)."""
    rating: float | None = None
    """The rating the user would likely give it, unrounded (None without a rater, and in similar-item lists)."""
    rating_source: str | None = None
    """Who said ``rating``: ``model``, ``fold-in``, ``bias-fallback`` or ``popular`` (None without a rater)."""
    score: float | None = None
    """In a similar-item list, its similarity to the item asked about; None in a user's list."""
    because: tuple = ()
    """Up to three of the user's liked rated item ids adding the most to its ranker score, most first."""


@dataclass(frozen=True)
class ItemList:
    """A list as people see it, best first, from any path: a known or new user, popular, similar items."""

    source: str
    """The path that made it: ``model``, ``fold-in`` or ``popular``; for similar items, the similarity's name."""
    items: tuple[ListItem, ...]
    """The listed items, best first (fewer than asked when fewer can be listed)."""
    ignored: tuple = ()
    """Item ids given with a new user's ratings that the model does not know; they were left out."""

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[ListItem]:
        return iter(self.items)

    def __getitem__(self, position: int) -> ListItem:
        return self.items[position]


@dataclass(frozen=True)
class IndexLists:
    """Lists for a batch of users in index space, best first: what metrics score and files are written from."""

    users: np.ndarray
    """int64 (B,): the users' indices (UNKNOWN for ids the model never saw)."""
    items: np.ndarray
    """int64 (B, k): listed item indices; -1 pads a list with fewer than k candidates."""
    ratings: np.ndarray
    """float32 (B, k): the predicted rating shown for each item (NaN where padded or without a rater)."""
    sources: np.ndarray
    """str (B,): ``model``, or ``popular`` for users with no training ratings."""


def order(
    scores: np.ndarray, k: int, lists: ListConfig, scale: tuple[float, float], predict: Predict | None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` items (B, k; -1 padded) from ranker scores (B, n_items), and their ratings (float32, NaN padded).

    Without ``predict`` (no rater) the ranker's order stands and ratings are NaN.
    """
    gate = lists.gate and predict is not None
    width = max(k, lists.candidates) if gate else k
    cand = top_k_rows(scores, width)
    if predict is None:
        return cand, np.full(cand.shape, np.nan, dtype=np.float32)
    rating = predict(cand)
    if gate:
        lo, hi = scale
        span = max(hi - lo, 1e-9)
        like = 1.0 / (1.0 + np.exp(-(rating - (lo + lists.like_at * span)) / (lists.softness * span)))
        ranked = np.take_along_axis(scores, np.maximum(cand, 0), axis=1).astype(np.float64)
        combined = np.where(cand >= 0, np.maximum(ranked, 0.0) * like, -np.inf)
        best = top_k_rows(combined, k)  # ties keep the ranker's order (lower column first)
        cand = np.where(best >= 0, np.take_along_axis(cand, np.maximum(best, 0), axis=1), -1)
        rating = np.take_along_axis(rating, np.maximum(best, 0), axis=1)
    return cand[:, :k], np.where(cand[:, :k] >= 0, rating[:, :k], np.nan).astype(np.float32)


def check_length(k: int) -> None:
    """A list length must be a positive whole number (``ConfigError`` otherwise)."""
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ConfigError(f"k must be a positive whole number, got {k!r}")


def finite(x: float) -> float | None:
    """``x`` as a plain float, or None where it is NaN or infinite (a padded or unrated place)."""
    x = float(x)
    return x if np.isfinite(x) else None
