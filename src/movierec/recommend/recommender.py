"""A trained recommender: a ranker that orders lists, a rater that predicts ratings, in raw ids.

How lists are made, and the ``source`` and ``rating_source`` each says, is in ``lists``;
every list is an ``ItemList``. Raw ids and predicted ratings, which need no list, are in
``predictions`` (``Predictions``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from movierec.data.ids import IdIndex
from movierec.data.ratings import ByUser
from movierec.models.base import Ranker, RatingModel, UserRows
from movierec.models.popular import popularity
from movierec.recommend import explain, fold_in, ranked
from movierec.recommend.derived import Derived
from movierec.recommend.lists import (
    MODEL,
    POPULAR,
    IndexLists,
    ItemList,
    ListConfig,
    ListItem,
    Predict,
    check_length,
    order,
)
from movierec.recommend.predictions import Predictions
from movierec.recommend.predictions import UnknownIdError as UnknownIdError  # where it was defined before
from movierec.recommend.similar import Similarity
from movierec.sittings import Sittings


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
    def recommend(self, user_id: object, k: int = 10, *, exclude_seen: bool = True) -> ItemList:
        """Top-``k`` items for a known user, best first, each with the rating the user would likely give.

        Items the user rated in training are left out unless ``exclude_seen`` is False; a
        user with no training ratings gets the ``popular`` list. Each item of a ``model``
        list carries ``because``: up to three of the user's liked rated items that add the
        most to the item's ranker score. Deterministic: ties go to the lower item index.
        """
        u = self.user_index(user_id)
        top = self.top_n(np.array([u]), k, exclude_seen=exclude_seen)
        if top.sources[0] != MODEL:
            return ranked.item_list(self, top, 0)
        items = top.items[0][top.items[0] >= 0]
        rated, values = self.history.items_of(u), self.history.ratings_of(u)
        because = explain.because(self.ranker, self.catalogue.item_ids, items, rated, values, self.device)
        return ranked.item_list(self, top, 0, because)

    def recommend_many(
        self, user_ids: Sequence[object] | None = None, k: int = 10, *, exclude_seen: bool = True
    ) -> Iterator[tuple[object, ItemList]]:
        """(user id, top-``k`` list) for known users (every user when None), in order, scored in blocks.

        The lists are ``recommend``'s, without ``because`` (explaining takes a ranker pass
        per user). Unknown ids raise ``UnknownIdError`` here, before any list is made.
        """
        check_length(k)
        if user_ids is None:
            users = np.arange(self.index.n_users, dtype=np.int64)
        else:
            users = np.array([self.user_index(u) for u in user_ids], dtype=np.int64)
        return ranked.many(self, users, k, exclude_seen)

    def top_n(self, user_idx: np.ndarray, k: int = 10, *, exclude_seen: bool = True) -> IndexLists:
        """Top-``k`` lists for users by index (``UNKNOWN`` allowed), in blocks of at most ``BLOCK_PAIRS`` scores.

        Never builds a users x items matrix: memory is bounded whatever the number of users.
        """
        return ranked.top_n(self, user_idx, k, exclude_seen)

    def _user_rows(self, users: np.ndarray, csr: tuple | None = None) -> UserRows:
        """``users``' training ratings as the ranker's input; ``csr`` is ``history.rows_of(users)`` when known."""
        return ranked.user_rows(self, users, csr)

    def scores(self, rows: UserRows) -> np.ndarray:
        """float32 (B, n_items): the ranker's scores of users' rows, popularity-discounted, -inf on cold items."""
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

    def ordered(self, scores: np.ndarray, k: int, predict: Predict) -> tuple[np.ndarray, np.ndarray]:
        """Lists from ranker scores (B, n_items) and their predicted ratings (see ``lists.order``)."""
        return order(scores, k, self.lists, self.scale, None if self.rater is None else predict)

    # --- new users ----------------------------------------------------------------------------

    def recommend_new_user(
        self, ratings: Sequence[tuple[object, float]], k: int = 10, *, exclude: Iterable[object] = ()
    ) -> ItemList:
        """Top-``k`` for a user the models have not seen, from (item_id, rating) pairs, without retraining.

        The rated items and ``exclude`` are left out. Unknown item ids are left out too and
        listed in ``ignored`` (the caller decides whether that is an error); a repeated
        item keeps its last rating. Ratings outside the scale are an error. The list's
        source is ``fold-in``, or ``popular`` when no rated item is known.
        """
        return fold_in.new_user_list(self, ratings, k, exclude)

    # --- popular --------------------------------------------------------------------------------

    @cached_property
    def popular_rating(self) -> np.ndarray:
        """float32 (n_items,): each item's damped mean rating, clip(mu + b_i) (NaN without a rater)."""
        if self.rater is None:
            return np.full(self.index.n_items, np.nan, dtype=np.float32)
        return np.clip(self.global_mean + self.item_bias, *self.scale).astype(np.float32)

    @cached_property
    def popular(self) -> np.ndarray:
        """Item indices with training ratings, by ``models.popular``'s score, best first."""
        floor = float(self.ranker.rating_floor)
        key = popularity(self.global_mean, self.item_bias, self.item_counts, self.scale, floor)
        rated = np.flatnonzero(self.item_counts > 0)
        return rated[np.lexsort((rated, -key[rated]))]

    def popular_items(self, k: int = 10, exclude: Iterable[int] = ()) -> ItemList:
        """The ``popular`` list without the item indices in ``exclude``."""
        check_length(k)
        skip = np.asarray(list(exclude), dtype=np.int64)
        order = self.popular
        if len(skip):
            order = order[~np.isin(order, skip)]
        top = order[:k]
        return self.listed(POPULAR, top, self.popular_rating[top], POPULAR)

    # --- similar items ---------------------------------------------------------------------------

    def similar_items(self, item_id: object, k: int = 10) -> ItemList:
        """The ``k`` items most like ``item_id``, most similar first, by the ranker's own similarity.

        Each item's ``score`` is that similarity; the list's ``source`` names it (the
        ranker's name, or ``co-rating``). Items no one rated in training are never listed,
        nor are items with a similarity of 0 or less. Ties go to the lower item index.
        """
        check_length(k)
        top, sims = self._similarity.nearest(self.item_index(item_id), k, self._cold_items, self.device)
        items = tuple(
            ListItem(self.catalogue.item_ids[j], self.catalogue.title(j), score=float(s))
            for j, s in zip(top.tolist(), sims.tolist(), strict=True)
        )
        return ItemList(self.similarity_source, items)

    @property
    def similarity_source(self) -> str:
        """The ranker's name when it has a similarity of its own, else ``co-rating``."""
        return self._similarity.source

    @cached_property
    def _similarity(self) -> Similarity:
        return Similarity(self.ranker, self.ranker_name, self.history, self.index.n_items)

    # --- items ------------------------------------------------------------------------------------

    def listed(
        self,
        source: str,
        items: np.ndarray,
        ratings: np.ndarray,
        rating_source: str | None,
        because: list | None = None,
    ) -> ItemList:
        """A list of item indices (-1 padding left out) as people see it; ``ratings`` count only with a rater."""
        shown = ratings if self.rater is not None else None
        return ItemList(source, self.catalogue.listed(items, shown, rating_source, because))

    def item_summary(self, item_idx: int) -> dict:
        """``item_id``, ``title`` and the number of training ratings of one item."""
        return self.catalogue.summary(item_idx)
