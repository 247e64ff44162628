"""A trained recommender: a ranker that orders lists, a rater that predicts ratings, in raw ids.

How lists are made, and the ``source`` and ``rating_source`` each says, is in ``lists``.

Raw ids and predicted ratings, which need no list, are in ``predictions`` (``Predictions``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial

import numpy as np
import torch

from movierec.data.ids import UNKNOWN, IdIndex
from movierec.data.ratings import ByUser
from movierec.models.base import Ranker, RatingModel, UserRows
from movierec.models.popular import popularity
from movierec.recommend import explain, fold_in
from movierec.recommend.derived import Derived
from movierec.recommend.lists import (
    FOLD_IN,
    MODEL,
    POPULAR,
    ListConfig,
    NewUserRecommendations,
    Predict,
    TopN,
    check_k,
    order,
    round_rating,
)
from movierec.recommend.predictions import Predictions
from movierec.recommend.predictions import UnknownIdError as UnknownIdError  # where it was defined before
from movierec.recommend.similar import Similarity
from movierec.recommend.topk import top_k
from movierec.sittings import Sittings

BLOCK_PAIRS = 1 << 22
"""Most scores held at once by batch top-N (users per block = this // n_items)."""


@dataclass(frozen=True)
class Recommender(Predictions):
    """A ranker and a rater, fitted on the same training ratings, with everything to answer in raw ids.

    Frozen: a variant (other list settings, no sittings, another ranker) is a ``replace``,
    which keeps the counts and catalogue derived from the same history (``derived``).
    """

    ranker: Ranker
    """Orders the lists (sees indices only)."""
    ranker_name: str
    """Registry name of the ranker (``ease``, ``ials``, ``popular``)."""
    ranker_config: object
    """The ranker's hyperparameters (a frozen dataclass)."""
    rater: RatingModel | None
    """Predicts ratings (centred on ``global_mean``); None for a log without ratings."""
    rater_name: str | None
    """Registry name of the rater (``mlp``, ``baseline``, ...)."""
    rater_config: object | None
    """The rater's hyperparameters (a frozen dataclass)."""
    index: IdIndex
    """Raw ids of every user and item index."""
    history: ByUser
    """The training ratings by user (fit and validation parts): what lists leave out and rankers read."""
    global_mean: float
    """Mean training rating; raters predict around it."""
    scale: tuple[float, float]
    """Lowest and highest rating: predictions are clipped to it."""
    user_bias: np.ndarray
    """float32 (n_users,): fallback biases from the baseline fit on the training data."""
    item_bias: np.ndarray
    """float32 (n_items,): as ``user_bias``, for items."""
    titles: np.ndarray | None = None
    """str (n_items,): titles by item index, where the data has them."""
    info: dict | None = None
    """The manifest's record of how it was made (``FitReport.as_info``, the split, the test's metrics)."""
    lists: ListConfig = ListConfig()
    """How lists combine the ranker and the rater."""
    sittings: Sittings | None = None
    """Each training sitting's shift on ratings at a known time (``movierec.sittings``); None: no shifts."""

    derived: Derived | None = field(default=None, repr=False, compare=False)
    """Counts and catalogue of ``history``: derived when built, kept by ``replace`` while the history is the same."""

    def __post_init__(self) -> None:
        if self.derived is None or not self.derived.holds(self.history, self.titles):
            object.__setattr__(self, "derived", Derived.of(self.history, self.index, self.titles))

    # --- ids ----------------------------------------------------------------------------

    def user_ratings(self, user_id: object) -> list[dict]:
        """A known user's training ratings, best first: ``item_id``, ``title``, ``rating``."""
        u = self.user_index(user_id)
        items, values = self.history.items_of(u), self.history.ratings_of(u)
        order = np.lexsort((items, -values))
        return [{**self.catalogue.row(int(items[j])), "rating": float(values[j])} for j in order]

    # --- lists of known users ---------------------------------------------------------------

    @torch.no_grad()
    def recommend(self, user_id: object, k: int = 10, *, exclude_seen: bool = True) -> list[dict]:
        """Top-``k`` items for a known user, best first: ``item_id``, ``title``, ``rating``, ``source``, ...

        Items the user rated in training are left out unless ``exclude_seen`` is False; a
        user with no training ratings gets the ``popular`` list. Each row of a ``model``
        list carries ``because``: up to three of the user's liked rated items that add the
        most to the item's ranker score. Deterministic: ties go to the lower item index.
        """
        u = self.user_index(user_id)
        top = self.top_n(np.array([u]), k, exclude_seen=exclude_seen)
        source = str(top.sources[0])
        rows = self._rows(top.items[0], top.ratings[0], source, MODEL if source == MODEL else POPULAR)
        if source == MODEL:
            items = top.items[0][top.items[0] >= 0]
            rated, values = self.history.items_of(u), self.history.ratings_of(u)
            explain.because(self.ranker, self.catalogue.item_ids, rows, items, rated, values, self._device)
        return rows

    @torch.no_grad()
    def top_n(self, user_idx: np.ndarray, k: int = 10, *, exclude_seen: bool = True) -> TopN:
        """Top-``k`` lists for users by index (``UNKNOWN`` allowed), in blocks of at most ``BLOCK_PAIRS`` scores.

        Never builds a users x items matrix: memory is bounded whatever the number of users.
        """
        check_k(k)
        users = np.asarray(user_idx, dtype=np.int64).ravel()
        n_items = self.index.n_items
        items = np.full((len(users), k), -1, dtype=np.int64)
        ratings = np.full((len(users), k), np.nan, dtype=np.float32)
        warm = (users >= 0) & (users < self.index.n_users)
        warm[warm] = self.user_counts[users[warm]] > 0
        sources = np.where(warm, MODEL, POPULAR)
        if not warm.all():
            top = self.popular[:k]
            items[~warm, : len(top)] = top
            ratings[~warm, : len(top)] = self._popular_rating[top]
        rows_warm = np.flatnonzero(warm)
        block = max(1, BLOCK_PAIRS // max(n_items, 1))
        for s in range(0, len(rows_warm), block):
            rows = rows_warm[s : s + block]
            u = users[rows]
            indptr, seen, values = self.history.rows_of(u)  # once: the ranker's input and what to leave out
            scores = self._scores(self._user_rows(u, (indptr, seen, values)))
            if exclude_seen:
                scores[np.repeat(np.arange(len(u)), np.diff(indptr)), seen] = -np.inf
            items[rows], ratings[rows] = self._finish(scores, k, partial(self._predict_known, u))
        return TopN(users, items, ratings, sources)

    def _user_rows(self, users: np.ndarray, csr: tuple | None = None) -> UserRows:
        """``users``' training ratings as the ranker's input; ``csr`` is ``history.rows_of(users)`` when known."""
        indptr_t, items_t, ratings_t, users_t = (
            torch.from_numpy(a).to(self._device) for a in (*(csr or self.history.rows_of(users)), users)
        )
        return UserRows(indptr_t, items_t, ratings_t, users=users_t)

    def _scores(self, rows: UserRows) -> np.ndarray:
        """float32 (B, n_items): the ranker's scores, popularity-discounted, -inf on items no one rated."""
        if self.ranker.training:
            self.ranker.eval()
        scores = self.ranker.score(rows).float().cpu().numpy()
        if self.lists.discount:
            # Positive scores only: a negative one divided by a larger number would rise. The
            # divisors are >= 1, so the smaller of s / d and s is s / d exactly where s > 0.
            np.minimum(scores / self._discount[None, :], scores, out=scores)
        scores[:, self._cold_items] = -np.inf
        return scores

    @cached_property
    def _discount(self) -> np.ndarray:
        return np.power(1.0 + self.item_counts, self.lists.discount).astype(np.float32)

    def _finish(self, scores: np.ndarray, k: int, predict: Predict) -> tuple[np.ndarray, np.ndarray]:
        """Lists from ranker scores (B, n_items) and their predicted ratings (see ``lists.order``)."""
        return order(scores, k, self.lists, self.scale, None if self.rater is None else predict)

    # --- new users ----------------------------------------------------------------------------

    @torch.no_grad()
    def recommend_new_user(
        self, ratings: Sequence[tuple[object, float]], k: int = 10, *, exclude: Iterable[object] = ()
    ) -> NewUserRecommendations:
        """Top-``k`` for a user the models have not seen, from (item_id, rating) pairs, without retraining.

        The rated items and ``exclude`` are left out. Unknown item ids are ignored and
        listed in ``ignored`` (the caller decides whether that is an error); a repeated
        item keeps its last rating. Ratings outside the scale are an error.
        """
        check_k(k)
        known, ignored = fold_in.parse_ratings(self.index, self.scale, ratings)
        excluded = set(known) | {i for i in (self.index.find("item", x) for x in exclude) if i != UNKNOWN}
        if not known:
            return NewUserRecommendations(self.popular_items(k, excluded), POPULAR, ignored)
        rated = np.fromiter(known, dtype=np.int64)
        values = np.fromiter(known.values(), dtype=np.float64)
        device = self._device
        rows = UserRows.one(torch.from_numpy(rated).to(device), torch.from_numpy(values).float().to(device))
        scores = self._scores(rows)
        scores[0, np.fromiter(excluded, dtype=np.int64, count=len(excluded))] = -np.inf
        predict, rating_source = fold_in.rater_of(
            self.rater, rated, values, self.global_mean, self.item_bias, self.scale, device
        )
        items, shown = self._finish(scores, k, predict)
        listed = items[0] >= 0
        top = items[0][listed]
        out = self._rows(top, shown[0][listed], FOLD_IN, rating_source)
        explain.because(self.ranker, self.catalogue.item_ids, out, top, rated, values, self._device)
        return NewUserRecommendations(out, FOLD_IN, ignored)

    # --- popular --------------------------------------------------------------------------------

    @cached_property
    def _popular_rating(self) -> np.ndarray:
        """float32 (n_items,): each item's damped mean rating, clip(mu + b_i) (NaN without a rater)."""
        if self.rater is None:
            return np.full(self.index.n_items, np.nan, dtype=np.float32)
        return np.clip(self.global_mean + self.item_bias, *self.scale).astype(np.float32)

    @cached_property
    def popular(self) -> np.ndarray:
        """Item indices with training ratings, by ``models.popular``'s score, best first."""
        key = popularity(self.global_mean, self.item_bias, self.item_counts, self.scale)
        rated = np.flatnonzero(self.item_counts > 0)
        return rated[np.lexsort((rated, -key[rated]))]

    def popular_items(self, k: int = 10, exclude: Iterable[int] = ()) -> list[dict]:
        """The ``popular`` list without the item indices in ``exclude``."""
        check_k(k)
        skip = np.asarray(list(exclude), dtype=np.int64)
        order = self.popular
        if len(skip):
            order = order[~np.isin(order, skip)]
        top = order[:k]
        return self._rows(top, self._popular_rating[top], POPULAR, POPULAR)

    # --- similar items ---------------------------------------------------------------------------

    @torch.no_grad()
    def similar_items(self, item_id: object, k: int = 10) -> list[dict]:
        """The ``k`` items most like ``item_id``, most similar first, by the ranker's own similarity.

        ``score`` is that similarity (``similarity_source`` names it). Items no one rated in
        training are never listed, nor are items with a similarity of 0 or less. Ties go
        to the lower item index.
        """
        check_k(k)
        i = self.item_index(item_id)
        sims = self._similarity.of(i, self._device)
        sims[i] = -np.inf
        sims[self._cold_items] = -np.inf
        sims[sims <= 0] = -np.inf
        top = top_k(sims, k)
        return [
            {**self.catalogue.row(int(j)), "score": round_rating(float(sims[j])), "source": self.similarity_source}
            for j in top
        ]

    @property
    def similarity_source(self) -> str:
        """The ranker's name when it has a similarity of its own, else ``co-rating``."""
        return self._similarity.source

    @cached_property
    def _similarity(self) -> Similarity:
        return Similarity(self.ranker, self.ranker_name, self.history, self.index.n_items)

    # --- rows -------------------------------------------------------------------------------------

    def _rows(self, items: np.ndarray, ratings: np.ndarray, source: str, rating_source: str | None) -> list[dict]:
        rated = self.rater is not None
        return [
            {
                **self.catalogue.row(int(i)),
                "rating": round_rating(float(r)) if rated else None,
                "rating_source": rating_source if rated else None,
                "source": source,
            }
            for i, r in zip(items, ratings, strict=True)
            if i >= 0
        ]

    def item_summary(self, item_idx: int) -> dict:
        """``item_id``, ``title`` and the number of training ratings of one item."""
        return self.catalogue.summary(item_idx)
