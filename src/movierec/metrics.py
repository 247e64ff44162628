"""Accuracy and ranking metrics as pure functions of arrays; each docstring carries its formula."""

from __future__ import annotations

import numpy as np

from movierec.data.ids import distinct


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error: sqrt(mean((y_true - y_pred)^2))."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error: mean(|y_true - y_pred|)."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def _pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=np.float64)
    b = np.asarray(y_pred, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("no ratings to score")
    return a, b


# --- ranking metrics ------------------------------------------------------------------
#
# For one user: ``ranked`` is the recommended item list, best first (no repeats);
# ``relevant`` is the set of items that count as hits (e.g. test items rated >= 4).
# hit_r = 1 when the item at rank r (1-based) is relevant, else 0; |R| = len(relevant).
# Each per-user function and the batch ``ranking_metrics`` share the formulas below,
# which work on a (users, k) matrix of hits.


def hits_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int) -> np.ndarray:
    """bool (k,): hit_r for r = 1..k; positions past the end of a short list are misses."""
    _check_k(k)
    top = np.asarray(ranked)[:k]
    if len(np.unique(top)) != len(top):
        raise ValueError("the ranked list repeats an item; a ranking lists each item once")
    out = np.zeros(k, dtype=bool)
    out[: len(top)] = np.isin(top, np.asarray(relevant))
    return out


def precision_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Precision at k: sum_{r<=k} hit_r / k (a list shorter than k is not excused)."""
    return float(_precision(hits_at_k(ranked, relevant, k)[None])[0])


def recall_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Recall at k: sum_{r<=k} hit_r / |R|; NaN when |R| = 0 (undefined)."""
    return float(_recall(hits_at_k(ranked, relevant, k)[None], _n_relevant(relevant))[0])


def ndcg_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Normalised discounted cumulative gain at k, binary gains.

    DCG = sum_{r<=k} hit_r / log2(r + 1); IDCG = sum_{r<=min(k,|R|)} 1 / log2(r + 1);
    NDCG = DCG / IDCG, in [0, 1]; NaN when |R| = 0.
    """
    return float(_ndcg(hits_at_k(ranked, relevant, k)[None], _n_relevant(relevant))[0])


def average_precision_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Average precision at k: sum_{r<=k} P@r * hit_r / min(k, |R|); NaN when |R| = 0.

    P@r is the precision of the first r items. Dividing by min(k, |R|) makes a list
    with every possible hit at the top score 1.
    """
    return float(_average_precision(hits_at_k(ranked, relevant, k)[None], _n_relevant(relevant))[0])


def hit_rate_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Hit rate at k for one user: 1 if any of the first k items is relevant, else 0."""
    return float(hits_at_k(ranked, relevant, k).any())


def map_at_k(ranked_lists: list, relevant_lists: list, k: int) -> float:
    """Mean average precision at k: the mean of ``average_precision_at_k`` over users with |R| > 0."""
    if len(ranked_lists) != len(relevant_lists):
        raise ValueError(f"{len(ranked_lists)} ranked lists but {len(relevant_lists)} relevant sets")
    aps = [average_precision_at_k(r, rel, k) for r, rel in zip(ranked_lists, relevant_lists, strict=True)]
    aps = [a for a in aps if not np.isnan(a)]
    if not aps:
        raise ValueError("no user has a relevant item; MAP is undefined")
    return float(np.mean(aps))


def catalogue_coverage(ranked_lists: list | np.ndarray, n_items: int, k: int | None = None) -> float:
    """Share of the catalogue recommended to anyone: |union of the top-k lists| / n_items.

    Negative entries (padding for lists shorter than k) are ignored.
    """
    if n_items < 1:
        raise ValueError("the catalogue is empty")
    if len(ranked_lists) == 0:
        return 0.0
    if isinstance(ranked_lists, np.ndarray) and ranked_lists.ndim == 2:
        tops = [ranked_lists[:, :k].ravel()]
    else:
        tops = [np.asarray(r).ravel()[:k] for r in ranked_lists]
    items = distinct(np.concatenate(tops))
    if items.dtype.kind in "iu":
        items = items[items >= 0]
    return len(items) / n_items


def ranking_metrics(hits: np.ndarray, n_relevant: np.ndarray) -> dict:
    """Mean precision, recall, NDCG, MAP and hit rate at k over users with |R| > 0.

    ``hits``: bool (users, k), hit_r of each user's list; ``n_relevant``: int (users,), |R|
    of each user (relevant items that could never be recommended still count). The
    formulas are those of the per-user functions above.
    """
    hits = np.asarray(hits, dtype=bool)
    n_relevant = np.asarray(n_relevant, dtype=np.int64)
    if hits.ndim != 2 or hits.shape[1] < 1 or n_relevant.shape != (hits.shape[0],):
        raise ValueError(f"hits must be (users, k>=1) and n_relevant (users,); got {hits.shape}, {n_relevant.shape}")
    if np.any(hits.sum(axis=1) > n_relevant):
        raise ValueError("a user has more hits than relevant items")
    keep = n_relevant > 0
    if not keep.any():
        raise ValueError("no user has a relevant item; ranking metrics are undefined")
    hits, n_relevant = hits[keep], n_relevant[keep]
    return {
        "precision": float(_precision(hits).mean()),
        "recall": float(_recall(hits, n_relevant).mean()),
        "ndcg": float(_ndcg(hits, n_relevant).mean()),
        "map": float(_average_precision(hits, n_relevant).mean()),
        "hit_rate": float(hits.any(axis=1).mean()),
        "n_users": int(keep.sum()),
    }


def _check_k(k: int) -> None:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def _n_relevant(relevant: np.ndarray) -> np.ndarray:
    return np.array([len(np.unique(np.asarray(relevant)))])


def _precision(hits: np.ndarray) -> np.ndarray:
    return hits.sum(axis=1) / hits.shape[1]


def _recall(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_relevant > 0, hits.sum(axis=1) / n_relevant, np.nan)


def _ndcg(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    k = hits.shape[1]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits @ discount
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[np.minimum(n_relevant, k)]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_relevant > 0, dcg / ideal, np.nan)


def _average_precision(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    k = hits.shape[1]
    precision_at_r = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    total = (precision_at_r * hits).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_relevant > 0, total / np.minimum(n_relevant, k), np.nan)
