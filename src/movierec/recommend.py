"""A trained model with its ids, titles and fallbacks: what users and the server call.

Prediction policy, in raw-id terms:
- a user and an item both seen in training: the model's prediction plus the training
  mean, clipped to the rating scale;
- otherwise (a user or item with no training ratings, or an id never seen at all): the
  training mean plus each regularised bias that is known (user's, item's), clipped.
  The biases come from the baseline model fitted on the same training data.

Recommendation policy: every list says which path produced it (``source``):
- ``model``: a user with training ratings; every item is scored by the model (items no one
  rated in training by the bias fallback above) and ranked by the unclipped score, so
  items clipped to the top of the scale keep their order; ties go to the lower item
  index. Items the user rated in training are left out unless asked for.
- ``fold-in``: a new user given as (item, rating) pairs; the model fits that user's
  vector and bias against its frozen item side (``RatingModel.fold_in``), no retraining.
- ``bias-fallback``: as ``fold-in``, for models that cannot fold users in: the user's
  bias alone is fitted, b_u = sum(r - mu - b_i) / (reg_user + n), and items rank by
  mu + b_u + b_i.
- ``popular``: a user with no ratings at all. Items rank by
  ``clip(mu + b_i) * log(1 + n_i)``: the item's damped mean rating (mu + b_i is the
  training mean plus the item's regularised bias, which shrinks an item with few
  ratings toward the mean) times the log of its number of training ratings, so the
  list holds items both well rated and widely rated. The score shown is the damped
  mean, the rating ``predict`` gives an unknown user for that item; the list is
  ordered by the product, not by that score. Items no one rated are never listed.

Similar items (``similar_items``): cosine similarity of the model's item vectors
(``source`` ``item-vectors``); for models without item vectors, cosine similarity of the
items' sets of raters in training, |U_i & U_j| / sqrt(|U_i| |U_j|) (``co-rating``).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from movierec.data.ids import UNKNOWN, IdIndex
from movierec.errors import ConfigError, MovierecError
from movierec.models.base import RatingModel, predict_centred
from movierec.models.baseline import BaselineConfig

MODEL, FOLD_IN, BIAS_FALLBACK, POPULAR = "model", "fold-in", "bias-fallback", "popular"
"""The ``source`` values of a recommendation list."""
ITEM_VECTORS, CO_RATING = "item-vectors", "co-rating"
"""The ``source`` values of a similar-items list."""

PAIRS_PER_CALL = 1 << 15
"""Most (user, item) pairs per ``model.score`` call, unless the model says otherwise.

Safe for the MLP, which holds a 1024-unit hidden layer per pair (128 MB a call). A model
whose ``score`` is a matrix product can set a class attribute ``score_chunk_pairs``
(e.g. ``1 << 22``): fewer, larger calls score all users several times faster, most of
all when torch's threads must share busy cores."""
BLOCK_PAIRS = 1 << 22
"""Most scores held at once by batch top-N (users per block = this // n_items)."""
BECAUSE_CANDIDATES = 50
"""A new user's best-rated items considered when explaining a recommendation."""


class UnknownIdError(MovierecError):
    """A raw user or item id the model has never seen, where it must know it."""

    def __init__(self, kind: str, raw: object) -> None:
        super().__init__(f"unknown {kind} id {raw!r}: the model was not trained with it")
        self.kind, self.raw = kind, raw


@dataclass(frozen=True)
class TopN:
    """Top-N lists for a batch of users, best first."""

    users: np.ndarray
    """int64 (B,): the users' indices."""
    items: np.ndarray
    """int64 (B, k): recommended item indices; -1 pads a list with fewer than k candidates."""
    scores: np.ndarray
    """float32 (B, k): the score shown for each item (NaN where padded)."""
    sources: np.ndarray
    """str (B,): ``model`` or ``popular`` (users with no training ratings)."""


@dataclass(frozen=True)
class NewUserRecommendations:
    """Recommendations for a user the model has not seen, from their ratings."""

    items: list[dict]
    """Rows as ``Recommender.recommend`` gives them, each with ``because`` (rated item ids)."""
    source: str
    """``fold-in``, ``bias-fallback`` or ``popular`` (no usable ratings)."""
    ignored: list
    """Rated item ids the model does not know; they were left out of the fold-in."""


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
    seen_ratings: np.ndarray | None = None
    """float32 (n_train,): the rating of each ``seen_items`` entry; None in older model dirs."""

    def __post_init__(self) -> None:
        # Derived once: predict and recommend consult them on every call.
        self.user_counts = np.diff(self.seen_indptr)
        self.item_counts = np.bincount(self.seen_items, minlength=self.index.n_items)
        # Plain Python ids and titles: building response rows from them avoids numpy scalars.
        self._item_ids = self.index.item_ids.tolist()
        self._titles = None if self.titles is None else [str(t) for t in self.titles]

    # --- ids --------------------------------------------------------------------------

    def user_index(self, user_id: object) -> int:
        """The index of raw ``user_id``; ``UnknownIdError`` if the model never saw it."""
        return _one(self.index, "user", user_id)

    def item_index(self, item_id: object) -> int:
        """The index of raw ``item_id``; ``UnknownIdError`` if the model never saw it."""
        return _one(self.index, "item", item_id)

    def user_id(self, user_idx: int) -> object:
        """The raw id of ``user_idx`` as a plain Python value."""
        return _plain(self.index.user_ids[user_idx])

    def item_id(self, item_idx: int) -> object:
        """The raw id of ``item_idx`` as a plain Python value."""
        return self._item_ids[item_idx]

    def seen(self, user_idx: int) -> np.ndarray:
        """Item indices ``user_idx`` rated in training."""
        return self.seen_items[self.seen_indptr[user_idx] : self.seen_indptr[user_idx + 1]]

    def user_ratings(self, user_id: object) -> list[dict]:
        """A known user's training ratings, best first: ``item_id``, ``title``, ``rating`` (None if not stored)."""
        u = self.user_index(user_id)
        start, end = self.seen_indptr[u], self.seen_indptr[u + 1]
        items = self.seen_items[start:end]
        if self.seen_ratings is None:
            return [{**self._item_row(int(i)), "rating": None} for i in items]
        values = self.seen_ratings[start:end]
        order = np.lexsort((items, -values))
        return [{**self._item_row(int(items[j])), "rating": float(values[j])} for j in order]

    # --- ratings ----------------------------------------------------------------------

    def predict_idx(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Predicted ratings for index pairs; ``UNKNOWN`` (-1) indices take the fallback."""
        return self._predict_idx(user_idx, item_idx)[0]

    def _predict_idx(self, user_idx: np.ndarray, item_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
            device = self._device
            u = torch.from_numpy(user_idx[both]).to(device)
            i = torch.from_numpy(item_idx[both]).to(device)
            out[both] = predict_centred(self.model, u, i).double().cpu().numpy() + self.global_mean
        return np.clip(out, *self.scale).astype(np.float32), both

    def predict(self, user_ids, item_ids) -> np.ndarray:
        """Predicted ratings for raw id pairs; unknown ids get the documented fallback."""
        return self.predict_with_source(user_ids, item_ids)[0]

    def predict_with_source(self, user_ids, item_ids) -> tuple[np.ndarray, np.ndarray]:
        """As ``predict``, plus bool (n,): True where the model answered, False where the fallback did."""
        u = _safe_indices(self.index, "user", user_ids)
        i = _safe_indices(self.index, "item", item_ids)
        if u.shape != i.shape:
            raise ConfigError(f"{len(u)} user ids but {len(i)} item ids; give them in pairs")
        return self._predict_idx(u, i)

    # --- top-N ------------------------------------------------------------------------

    @torch.no_grad()
    def recommend(self, user_id, k: int = 10, *, exclude_seen: bool = True) -> list[dict]:
        """Top-``k`` items for a known user, best first: ``item_id``, ``title``, ``score``, ``source``.

        Items the user rated in training are left out unless ``exclude_seen`` is False;
        a user with no training ratings gets the ``popular`` list. Deterministic: ties
        go to the lower item index.
        """
        top = self.top_n(np.array([self.user_index(user_id)]), k, exclude_seen=exclude_seen)
        return self._rows(top.items[0], top.scores[0], str(top.sources[0]))

    @torch.no_grad()
    def top_n(self, user_idx: np.ndarray, k: int = 10, *, exclude_seen: bool = True) -> TopN:
        """Top-``k`` lists for users by index, scored in blocks of at most ``BLOCK_PAIRS`` scores.

        Never builds a users x items matrix: memory is bounded whatever the number of users.
        """
        _check_k(k)
        users = np.asarray(user_idx, dtype=np.int64).ravel()
        n_items = self.index.n_items
        items = np.full((len(users), k), -1, dtype=np.int64)
        scores = np.full((len(users), k), np.nan, dtype=np.float32)
        cold = self.user_counts[users] == 0
        sources = np.where(cold, POPULAR, MODEL)
        if cold.any():
            top = self.popular[:k]
            items[cold, : len(top)] = top
            scores[cold, : len(top)] = self._popular_score[top]
        warm = np.flatnonzero(~cold)
        block = max(1, BLOCK_PAIRS // max(n_items, 1))
        for s in range(0, len(warm), block):
            rows = warm[s : s + block]
            raw = self._score_block(users[rows])
            if exclude_seen:
                r, c = self._seen_pairs(users[rows])
                raw[r, c] = -np.inf
            top_items = _top_k_rows(raw, k)
            items[rows] = top_items
            picked = np.take_along_axis(raw, np.maximum(top_items, 0), axis=1)
            scores[rows] = np.where(top_items >= 0, np.clip(picked, *self.scale), np.nan)
        return TopN(users, items, scores, sources)

    def _score_block(self, users: np.ndarray) -> np.ndarray:
        """float32 (B, n_items): unclipped predicted ratings; items unrated in training get the fallback."""
        device = self._device
        n_items = self.index.n_items
        u = torch.from_numpy(users).to(device)
        step = max(1, int(getattr(self.model, "score_chunk_pairs", PAIRS_PER_CALL)) // len(users))
        out = np.empty((len(users), n_items), dtype=np.float32)
        self.model.eval()
        for s in range(0, n_items, step):
            items = torch.arange(s, min(s + step, n_items), device=device)
            out[:, s : s + step] = self.model.score(u, items).float().cpu().numpy()
        out += np.float32(self.global_mean)
        cold = self._cold_items
        if len(cold):
            out[:, cold] = self.global_mean + self.user_bias[users][:, None] + self.item_bias[cold][None, :]
        return out

    def _seen_pairs(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, item) positions of the training ratings of ``users``, rows numbered as in ``users``."""
        starts = self.seen_indptr[users]
        lengths = self.seen_indptr[users + 1] - starts
        rows = np.repeat(np.arange(len(users)), lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return rows, self.seen_items[np.repeat(starts, lengths) + offsets]

    @cached_property
    def _cold_items(self) -> np.ndarray:
        return np.flatnonzero(self.item_counts == 0)

    @cached_property
    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    @cached_property
    def _popular_score(self) -> np.ndarray:
        """float32 (n_items,): each item's damped mean rating, clip(mu + b_i)."""
        return np.clip(self.global_mean + self.item_bias, *self.scale).astype(np.float32)

    @cached_property
    def popular(self) -> np.ndarray:
        """Item indices with training ratings, by clip(mu + b_i) * log(1 + n_i), best first."""
        key = self._popular_score.astype(np.float64) * np.log1p(self.item_counts)
        rated = np.flatnonzero(self.item_counts > 0)
        return rated[np.lexsort((rated, -key[rated]))]

    def popular_items(self, k: int = 10, exclude: Iterable[int] = ()) -> list[dict]:
        """The ``popular`` list (see the module docstring) without the item indices in ``exclude``."""
        _check_k(k)
        skip = np.asarray(list(exclude), dtype=np.int64)
        order = self.popular
        if len(skip):
            order = order[~np.isin(order, skip)]
        top = order[:k]
        return self._rows(top, self._popular_score[top], POPULAR)

    # --- new users ----------------------------------------------------------------------

    @torch.no_grad()
    def recommend_new_user(
        self, ratings: Sequence[tuple[object, float]], k: int = 10, *, exclude: Iterable[object] = ()
    ) -> NewUserRecommendations:
        """Top-``k`` for a user the model has not seen, from (item_id, rating) pairs, without retraining.

        The rated items and ``exclude`` are left out. Each row carries ``because``: up to
        three of the user's best-liked rated items (rated at or above their own mean)
        closest to it, most similar first. Unknown item ids are ignored and listed; a
        repeated item keeps its last rating. Ratings outside the scale are an error.
        """
        _check_k(k)
        lo, hi = self.scale
        known: dict[int, float] = {}
        ignored = []
        for item_id, rating in ratings:
            r = float(rating)
            if not np.isfinite(r) or not lo <= r <= hi:
                raise ConfigError(f"rating {rating!r} of item {item_id!r} is outside the rating scale {lo:g}..{hi:g}")
            idx = _safe_idx(self.index, "item", item_id)
            if idx == UNKNOWN:
                ignored.append(item_id)
            else:
                known[idx] = r
        excluded = set(known) | {i for i in (_safe_idx(self.index, "item", x) for x in exclude) if i != UNKNOWN}
        if not known:
            return NewUserRecommendations(self.popular_items(k, excluded), POPULAR, ignored)
        rated = np.fromiter(known, dtype=np.int64)
        values = np.fromiter(known.values(), dtype=np.float64)
        centred = values - self.global_mean
        # The bias-only fit: used as the whole answer for models that cannot fold in, and
        # for items no one rated in training (whose learned vectors are untrained).
        b_u = float(np.sum(centred - self.item_bias[rated]) / (BaselineConfig().reg_user + len(rated)))
        scorer = self.model.fold_in(
            torch.from_numpy(rated).to(self._device), torch.from_numpy(centred.astype(np.float32)).to(self._device)
        )
        if scorer is None:
            raw = self.global_mean + b_u + self.item_bias.astype(np.float64)
            source = BIAS_FALLBACK
        else:
            self.model.eval()
            all_items = torch.arange(self.index.n_items, device=self._device)
            parts = [scorer(all_items[s : s + PAIRS_PER_CALL]) for s in range(0, len(all_items), PAIRS_PER_CALL)]
            raw = torch.cat(parts).double().cpu().numpy() + self.global_mean
            raw[self._cold_items] = self.global_mean + b_u + self.item_bias[self._cold_items]
            source = FOLD_IN
        raw[np.fromiter(excluded, dtype=np.int64, count=len(excluded))] = -np.inf
        top = _top_k(raw, k)
        rows = self._rows(top, np.clip(raw[top], lo, hi), source)
        mask = values >= values.mean()
        liked = rated[mask][np.lexsort((rated[mask], -values[mask]))][:BECAUSE_CANDIDATES]
        for row, sims in zip(rows, self._similarity_to(top, liked), strict=True):
            best = np.lexsort((liked, -sims))[:3]
            row["because"] = [self._item_ids[int(liked[j])] for j in best if sims[j] > 0]
        return NewUserRecommendations(rows, source, ignored)

    # --- similar items ----------------------------------------------------------------

    @torch.no_grad()
    def similar_items(self, item_id, k: int = 10) -> list[dict]:
        """The ``k`` items most similar to ``item_id``, most similar first.

        ``score`` is the cosine similarity, ``source`` the method (``similarity_source``).
        Items no one rated in training are never listed (their vectors are untrained), nor
        are items that share no rater under ``co-rating``. Ties go to the lower item index.
        """
        _check_k(k)
        i = self.item_index(item_id)
        sims = self._similarity_to(np.array([i]), None)[0].astype(np.float64)
        sims[i] = -np.inf
        sims[self._cold_items] = -np.inf
        if self._unit_vectors is None:
            sims[sims <= 0] = -np.inf  # no shared rater: not similar at all
        top = _top_k(sims, k)
        return self._rows(top, sims[top], self.similarity_source)

    @property
    def similarity_source(self) -> str:
        """``item-vectors`` when the model has item vectors, else ``co-rating``."""
        return CO_RATING if self._unit_vectors is None else ITEM_VECTORS

    @cached_property
    def _unit_vectors(self) -> np.ndarray | None:
        vectors = self.model.item_vectors()
        if vectors is None:
            return None
        v = vectors.detach().float().cpu().numpy()
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)

    def _similarity_to(self, items: np.ndarray, others: np.ndarray | None) -> np.ndarray:
        """float32 (len(items), len(others) or n_items): cosine similarity by the method in use."""
        if self._unit_vectors is not None:
            v = self._unit_vectors
            return v[items] @ (v if others is None else v[others]).T
        return self._co_rating_cosine(items, others)

    @cached_property
    def _item_raters(self) -> tuple[np.ndarray, np.ndarray]:
        """CSR of training raters by item: (indptr (n_items + 1,), users sorted within each item)."""
        users = np.repeat(np.arange(self.index.n_users, dtype=np.int32), self.user_counts)
        order = np.argsort(self.seen_items, kind="stable")
        indptr = np.zeros(self.index.n_items + 1, dtype=np.int64)
        np.cumsum(self.item_counts, out=indptr[1:])
        return indptr, users[order]

    def _co_rating_cosine(self, items: np.ndarray, others: np.ndarray | None) -> np.ndarray:
        indptr, raters = self._item_raters
        n_users = self.index.n_users
        width = self.index.n_items if others is None else len(others)
        out = np.zeros((len(items), width), dtype=np.float32)
        if others is not None and len(others):
            # A users x others membership table: one gather per item answers every pair.
            member = np.zeros((len(others), n_users), dtype=bool)
            for j, o in enumerate(others):
                member[j, raters[indptr[o] : indptr[o + 1]]] = True
        for row, i in enumerate(items):
            users_i = raters[indptr[i] : indptr[i + 1]]
            if len(users_i) == 0 or width == 0:
                continue
            if others is None:
                r, c = self._seen_pairs(users_i.astype(np.int64))
                co = np.bincount(c, minlength=self.index.n_items).astype(np.float64)
                counts = self.item_counts
            else:
                co = member[:, users_i].sum(axis=1).astype(np.float64)
                counts = self.item_counts[others]
            with np.errstate(divide="ignore", invalid="ignore"):
                out[row] = np.where(counts > 0, co / np.sqrt(len(users_i) * counts.astype(np.float64)), 0.0)
        return out

    # --- rows ---------------------------------------------------------------------------

    def _rows(self, items: np.ndarray, scores: np.ndarray, source: str) -> list[dict]:
        return [
            {**self._item_row(int(i)), "score": _round(float(s)), "source": source}
            for i, s in zip(items, scores, strict=True)
            if i >= 0
        ]

    def _item_row(self, item_idx: int) -> dict:
        return {
            "item_id": self._item_ids[item_idx],
            "title": None if self._titles is None else self._titles[item_idx],
        }

    def item_summary(self, item_idx: int) -> dict:
        """``item_id``, ``title`` and the number of training ratings of one item."""
        return {**self._item_row(item_idx), "n_ratings": int(self.item_counts[item_idx])}


# --- batch output --------------------------------------------------------------------


def write_recommendations(
    recommender: Recommender,
    path: str | Path,
    user_ids: Sequence | None = None,
    *,
    k: int = 10,
    exclude_seen: bool = True,
) -> int:
    """Write top-``k`` lists for ``user_ids`` (all users when None) to a .csv or .parquet file.

    One row per recommendation: ``user_id``, ``rank`` (1 = best), ``item_id``, ``title``
    (when the model has titles), ``score``, ``source``. Users are scored in blocks and
    the file is streamed, so memory stays bounded; it is written to a temporary sibling
    and renamed into place only when complete. Returns the number of rows written.
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ConfigError(f"{path}: write recommendations to a .csv or .parquet file")
    _check_k(k)
    if user_ids is None:
        users = np.arange(recommender.index.n_users, dtype=np.int64)
    else:
        users = np.array([recommender.user_index(u) for u in user_ids], dtype=np.int64)
    item_ids = recommender.index.item_ids
    user_raw = recommender.index.user_ids
    titles = recommender.titles
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    block = max(1, BLOCK_PAIRS // max(recommender.index.n_items, 1))
    written = 0
    writer = None
    try:
        for s in range(0, max(len(users), 1), block):
            top = recommender.top_n(users[s : s + block], k, exclude_seen=exclude_seen)
            valid = top.items >= 0
            row_user = np.repeat(top.users, k).reshape(-1, k)[valid]
            rank = np.tile(np.arange(1, k + 1), (len(top.users), 1))[valid]
            items = top.items[valid]
            columns = {
                "user_id": pa.array(user_raw[row_user]),
                "rank": pa.array(rank.astype(np.int32)),
                "item_id": pa.array(item_ids[items]),
            }
            if titles is not None:
                columns["title"] = pa.array(titles[items].astype(str))
            columns["score"] = pa.array(top.scores[valid].astype(np.float32))
            columns["source"] = pa.array(np.repeat(top.sources, k).reshape(-1, k)[valid].astype(str))
            table = pa.table(columns)
            if writer is None:
                parquet = suffix == ".parquet"
                writer = pq.ParquetWriter(tmp, table.schema) if parquet else pa_csv.CSVWriter(tmp, table.schema)
            writer.write_table(table)
            written += table.num_rows
        if writer is not None:
            writer.close()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return written


# --- helpers ---------------------------------------------------------------------------


def _check_k(k: int) -> None:
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ConfigError(f"k must be a positive whole number, got {k!r}")


def _safe_idx(index: IdIndex, kind: str, raw: object) -> int:
    """Index of one raw ``kind`` id, ``UNKNOWN`` when never seen or not an id at all (a float, a huge int).

    A string matches an integer id only when written as one ("12", not " 12" or "1e1").
    """
    known = index.user_ids if kind == "user" else index.item_ids
    if isinstance(raw, bool) or not isinstance(raw, (int, str, np.integer, np.str_)):
        return UNKNOWN
    if isinstance(raw, str) and known.dtype.kind in "iu" and not _INT.fullmatch(raw):
        return UNKNOWN
    lookup = index.user_idx if kind == "user" else index.item_idx
    try:
        return int(lookup(np.asarray([raw]), strict=False)[0])
    except (ValueError, OverflowError, TypeError):
        return UNKNOWN


def _safe_indices(index: IdIndex, kind: str, ids) -> np.ndarray:
    """int64 indices of raw ``kind`` ids, ``UNKNOWN`` for each one never seen or not an id."""
    known = index.user_ids if kind == "user" else index.item_ids
    arr = ids if isinstance(ids, np.ndarray) else np.asarray(list(ids))
    if arr.ndim == 1 and (arr.dtype.kind in "iu" or (arr.dtype.kind == "U" and known.dtype.kind == "U")):
        return (index.user_idx if kind == "user" else index.item_idx)(arr, strict=False)
    # Mixed or odd values (a float, a string for integer ids): one by one, so one bad id
    # does not make the others unknown.
    return np.array([_safe_idx(index, kind, x) for x in arr.ravel().tolist()], dtype=np.int64)


_INT = re.compile(r"[+-]?[0-9]+")


def _one(index: IdIndex, kind: str, raw: object) -> int:
    idx = _safe_idx(index, kind, raw)
    if idx == UNKNOWN:
        raise UnknownIdError(kind, _plain(raw))
    return idx


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def _round(x: float) -> float | None:
    return round(x, 4) if np.isfinite(x) else None


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


def _top_k_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """int64 (B, k): ``_top_k`` of each row, -1 padded; vectorised where no tie straddles the k-th place."""
    b, n = scores.shape
    out = np.full((b, k), -1, dtype=np.int64)
    if n == 0 or b == 0:
        return out
    if b == 1:  # one user (a served request): the 1-D path costs half as much
        top = _top_k(scores[0], k)
        out[0, : len(top)] = top
        return out
    kk = min(k, n)
    part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    picked = np.take_along_axis(scores, part, axis=1)
    kth = picked.min(axis=1)
    # The partition's set is the answer when exactly kk scores reach the k-th value;
    # otherwise (ties at the boundary, too few finite scores) the row is redone exactly.
    exact = np.isfinite(kth) & ((scores >= kth[:, None]).sum(axis=1) == kk)
    order = np.lexsort((part, -picked), axis=1)
    out[:, :kk] = np.where(exact[:, None], np.take_along_axis(part, order, axis=1), -1)
    for r in np.flatnonzero(~exact):
        top = _top_k(scores[r], k)
        out[r, :] = -1
        out[r, : len(top)] = top
    return out
