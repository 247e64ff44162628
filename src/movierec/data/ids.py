"""The one place raw ids meet contiguous indices.

``user_id``/``item_id`` are raw ids as the data has them (ints for MovieLens, strings
for other files); ``user_idx``/``item_idx`` are contiguous indices 0..N-1 that models see.
Raw ids are stored sorted, so mapping is a binary search and the index is the same
whatever order the ratings came in.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from movierec.errors import MovierecError

UNKNOWN = -1
"""Index returned for a raw id the index has never seen (with ``strict=False``)."""


def _lookup(sorted_ids: np.ndarray, ids: np.ndarray, what: str, strict: bool) -> np.ndarray:
    ids = np.asarray(ids)
    if sorted_ids.dtype.kind in "iu" and ids.dtype.kind not in "iu":
        # Ids from JSON or a URL arrive as strings; match them to integer ids by value.
        try:
            ids = ids.astype(np.int64)
        except ValueError:
            if strict:
                raise MovierecError(f"unknown {what} id(s): {ids[:5].tolist()}") from None
            return np.full(ids.shape, UNKNOWN, dtype=np.int64)
    elif sorted_ids.dtype.kind == "U" and ids.dtype.kind != "U":
        ids = ids.astype(str)
    pos = np.searchsorted(sorted_ids, ids)
    pos_clipped = np.minimum(pos, len(sorted_ids) - 1)
    found = (pos < len(sorted_ids)) & (sorted_ids[pos_clipped] == ids) if len(sorted_ids) else np.zeros(ids.shape, bool)
    if strict and not found.all():
        missing = ids[~found][:5].tolist()
        raise MovierecError(f"unknown {what} id(s): {missing}")
    return np.where(found, pos_clipped, UNKNOWN).astype(np.int64)


@dataclass(frozen=True)
class IdIndex:
    """Raw user and item ids, sorted; position in each array is the index."""

    user_ids: np.ndarray
    """Sorted unique raw user ids; ``user_ids[user_idx]`` is the raw id."""
    item_ids: np.ndarray
    """Sorted unique raw item ids; ``item_ids[item_idx]`` is the raw id."""

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @classmethod
    def build(cls, user_ids: np.ndarray, item_ids: np.ndarray) -> tuple[IdIndex, np.ndarray, np.ndarray]:
        """Index the raw id columns of a ratings log; returns the index and both index columns."""
        users, user_idx = np.unique(user_ids, return_inverse=True)
        items, item_idx = np.unique(item_ids, return_inverse=True)
        return cls(users, items), user_idx.astype(np.int32), item_idx.astype(np.int32)

    def user_idx(self, user_ids: np.ndarray | list, *, strict: bool = True) -> np.ndarray:
        """Raw user ids to indices; unknown ids raise, or map to ``UNKNOWN`` if not strict."""
        return _lookup(self.user_ids, np.asarray(user_ids), "user", strict)

    def item_idx(self, item_ids: np.ndarray | list, *, strict: bool = True) -> np.ndarray:
        """Raw item ids to indices; unknown ids raise, or map to ``UNKNOWN`` if not strict."""
        return _lookup(self.item_ids, np.asarray(item_ids), "item", strict)

    def find(self, kind: str, raw: object) -> int:
        """The index of one raw ``kind`` (``user``/``item``) id; ``UNKNOWN`` when never seen or not an id.

        The policy for ids from outside (a URL, JSON, a command line) is the ratings reader's
        (``WHOLE_NUMBER``): "12" and "12.0" are id 12, and so is the JSON number 12.0; not
        " 12", "1e1" or "12.5". A bool, a fraction or a number too large for the ids is not an id.
        """
        known = self.user_ids if kind == "user" else self.item_ids
        if isinstance(raw, bool | np.bool_):
            return UNKNOWN
        if isinstance(raw, float | np.floating):
            if not (math.isfinite(raw) and raw == math.floor(raw)):
                return UNKNOWN
            raw = int(raw)
        if not isinstance(raw, int | str | np.integer | np.str_):
            return UNKNOWN
        if isinstance(raw, str | np.str_) and known.dtype.kind in "iu":
            if not WHOLE_NUMBER.fullmatch(str(raw)):
                return UNKNOWN
            raw = int(str(raw).partition(".")[0])
        try:
            return int(_lookup(known, np.asarray([raw]), kind, False)[0])
        except (ValueError, OverflowError, TypeError):
            return UNKNOWN

    def find_many(self, kind: str, ids: object) -> np.ndarray:
        """int64 indices of raw ``kind`` ids, ``UNKNOWN`` for each one never seen or not an id."""
        known = self.user_ids if kind == "user" else self.item_ids
        arr = ids if isinstance(ids, np.ndarray) else np.asarray(list(ids))  # type: ignore[call-overload]
        if arr.ndim == 1 and (arr.dtype.kind in "iu" or (arr.dtype.kind == "U" and known.dtype.kind == "U")):
            return _lookup(known, arr, kind, False)
        # Mixed or odd values (a float, a string for integer ids): one by one, so one bad id
        # does not make the others unknown.
        return np.array([self.find(kind, x) for x in arr.ravel().tolist()], dtype=np.int64)

    def to_json(self) -> dict:
        return {"user_ids": self.user_ids.tolist(), "item_ids": self.item_ids.tolist()}

    @classmethod
    def from_json(cls, obj: dict) -> IdIndex:
        return cls(_ids_array(obj["user_ids"]), _ids_array(obj["item_ids"]))


WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+(\.0*)?")
"""An id written as a whole number: the ratings reader makes a column of these integer ids (``data.tables``)."""


def distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values of a 1-d array: ``np.unique(values)``, by sorting.

    numpy 2.3+ finds distinct values by hashing, which took 27 s for 20M (user, item)
    keys on a 2-core machine where a sort and a comparison take 0.4 s.
    """
    out = np.sort(np.asarray(values).ravel())
    if len(out) > 1:
        out = out[np.concatenate(([True], out[1:] != out[:-1]))]
    return out


def _ids_array(values: list) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    return arr.astype(str)
