"""Top-k selection over score arrays, deterministic: best first, ties to the lower index."""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
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


def top_k_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """int64 (B, k): ``top_k`` of each row, -1 padded; vectorised where no tie straddles the k-th place."""
    b, n = scores.shape
    out = np.full((b, k), -1, dtype=np.int64)
    if n == 0 or b == 0:
        return out
    if b == 1:  # one user (a served request): the 1-D path costs half as much
        top = top_k(scores[0], k)
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
        top = top_k(scores[r], k)
        out[r, :] = -1
        out[r, : len(top)] = top
    return out
