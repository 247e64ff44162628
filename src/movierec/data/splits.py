"""Hold-out splits: each returns the row positions of the two parts, disjoint and complete.

Positions (not copies) are returned so callers can also split side arrays, such as the
synthetic generator's per-rating noise floor.
"""

from __future__ import annotations

import numpy as np

from movierec.data.ratings import Ratings
from movierec.errors import ConfigError

SPLITS = ("random", "user", "time")


def _check_fraction(fraction: float) -> None:
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"the held-out fraction must be between 0 and 1, got {fraction}")


def random_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out a uniformly random ``fraction`` of the rows (the notebook's 80/20 split)."""
    _check_fraction(fraction)
    perm = np.random.default_rng(seed).permutation(n)
    n_out = int(round(n * fraction))
    return np.sort(perm[n_out:]), np.sort(perm[:n_out])


def user_split(user_idx: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``fraction`` of each user's ratings, at random; users with one rating keep it.

    Every user with two or more ratings appears in both parts, so the test measures
    how well the model knows users it has seen, not cold start.
    """
    _check_fraction(fraction)
    rng = np.random.default_rng(seed)
    n = len(user_idx)
    # Random order within each user: sort by (user, random key).
    order = np.lexsort((rng.random(n), user_idx))
    users_sorted = user_idx[order]
    starts = np.flatnonzero(np.r_[True, users_sorted[1:] != users_sorted[:-1]])
    counts = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, counts)
    n_out = np.floor(counts * fraction + rng.random(len(counts))).astype(np.int64)
    n_out = np.minimum(n_out, counts - 1)
    held = rank < np.repeat(n_out, counts)
    return np.sort(order[~held]), np.sort(order[held])


def time_split(timestamp: np.ndarray | None, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Hold out the latest ``fraction`` of ratings by timestamp (ties broken by row order)."""
    _check_fraction(fraction)
    if timestamp is None:
        raise ConfigError("a temporal split needs timestamps, and this data has none; use --split random")
    order = np.argsort(timestamp, kind="stable")
    n_out = int(round(len(order) * fraction))
    cut = len(order) - n_out
    return np.sort(order[:cut]), np.sort(order[cut:])


def split_rows(ratings: Ratings, how: str, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Dispatch on the split name: ``random``, ``user`` or ``time``."""
    if how == "random":
        return random_split(len(ratings), fraction, seed)
    if how == "user":
        return user_split(ratings.user_idx, fraction, seed)
    if how == "time":
        return time_split(ratings.timestamp, fraction)
    raise ConfigError(f"unknown split {how!r}; choose one of {', '.join(SPLITS)}")
