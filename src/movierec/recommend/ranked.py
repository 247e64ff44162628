"""Known users' lists in index space, scored in blocks: the kernel under every known user's list."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import torch

from movierec.models.base import UserRows
from movierec.recommend.lists import MODEL, POPULAR, IndexLists, ItemList, check_length

if TYPE_CHECKING:
    from movierec.recommend.recommender import Recommender

BLOCK_PAIRS = 1 << 22
"""Most scores held at once by batch top-N (users per block = this // n_items)."""


def block_size(n_items: int) -> int:
    """Users scored at once: at most ``BLOCK_PAIRS`` scores, at least one user."""
    return max(1, BLOCK_PAIRS // max(n_items, 1))


@torch.no_grad()
def top_n(rec: Recommender, user_idx: np.ndarray, k: int, exclude_seen: bool) -> IndexLists:
    """``Recommender.top_n``: users without training ratings get the popular list, the rest the ranker's."""
    check_length(k)
    users = np.asarray(user_idx, dtype=np.int64).ravel()
    items = np.full((len(users), k), -1, dtype=np.int64)
    ratings = np.full((len(users), k), np.nan, dtype=np.float32)
    warm = (users >= 0) & (users < rec.index.n_users)
    warm[warm] = rec.user_counts[users[warm]] > 0
    sources = np.where(warm, MODEL, POPULAR)
    if not warm.all():
        top = rec.popular[:k]
        items[~warm, : len(top)] = top
        ratings[~warm, : len(top)] = rec.popular_rating[top]
    rows_warm = np.flatnonzero(warm)
    block = block_size(rec.index.n_items)
    for s in range(0, len(rows_warm), block):
        rows = rows_warm[s : s + block]
        u = users[rows]
        indptr, seen, values = rec.history.rows_of(u)  # once: the ranker's input and what to leave out
        scores = rec.scores(user_rows(rec, u, (indptr, seen, values)))
        if exclude_seen:
            scores[np.repeat(np.arange(len(u)), np.diff(indptr)), seen] = -np.inf
        items[rows], ratings[rows] = rec.ordered(scores, k, partial(rec.predict_known, u))
    return IndexLists(users, items, ratings, sources)


def many(rec: Recommender, users: np.ndarray, k: int, exclude_seen: bool) -> Iterator[tuple[object, ItemList]]:
    """(user id, list) for each of ``users`` (indices), in order, a block of users scored at a time."""
    block = block_size(rec.index.n_items)
    for s in range(0, len(users), block):
        top = top_n(rec, users[s : s + block], k, exclude_seen)
        for row, u in enumerate(top.users.tolist()):
            yield rec.user_id(u), item_list(rec, top, row)


def item_list(rec: Recommender, top: IndexLists, row: int, because: list | None = None) -> ItemList:
    """Row ``row`` of a batch as people see it: a ``model`` list rated by the rater, a ``popular`` one as popular."""
    source = str(top.sources[row])
    return rec.listed(source, top.items[row], top.ratings[row], source, because)


def user_rows(rec: Recommender, users: np.ndarray, csr: tuple | None = None) -> UserRows:
    """``users``' training ratings as the ranker's input; ``csr`` is ``history.rows_of(users)`` when known."""
    indptr_t, items_t, ratings_t, users_t = (
        torch.from_numpy(a).to(rec.device) for a in (*(csr or rec.history.rows_of(users)), users)
    )
    return UserRows(indptr_t, items_t, ratings_t, users=users_t)
