"""Peer libraries' top-N recommenders on movierec's split, scored with movierec's ranking protocol.

Peers: most popular (count of training ratings); implicit's ALS and BPR; cornac's EASE,
BPR, VAECF, BiVAECF and RecVAE; LensKit's ItemKNN (explicit and implicit feedback) and
ImplicitMF (presence only, and ratings as confidence). Each is tuned on movierec's
validation part (trained on ``parts.fit``, NDCG@10 on ``parts.val``), then retrained with
the chosen settings on fit + val and scored once on ``parts.test``.

The protocol is ``movierec.evaluate.evaluate_ranking``'s: every user with a held-out
rating >= 4 gets a top-10 list over ALL items they did not rate in training (no sampled
negatives); a held-out item rated >= 4 is relevant; users with no training ratings get the
most-popular list; items no one rated in training are never listed. Lists are cut with
``movierec.recommend.topk.top_k_rows`` (best first, ties to the lower index) and scored
with ``movierec.metrics.ranking_metrics`` and ``catalogue_coverage``.

Needs implicit, cornac, lenskit, torch (CPU), pandas and scipy, which movierec does not
depend on; run it from the peers venv (see bench/README.md). Nothing in the package or
tests imports this file.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "LK_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("LK_NUM_BACKEND_THREADS", "1")
os.environ.setdefault("LK_NUM_PROCS", "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

try:
    import scipy.sparse as sp
except ModuleNotFoundError:  # the project venv: the peers' libraries live in a venv of their own
    sys.exit(
        "bench/ranking_peers.py needs scipy, implicit, cornac and lenskit: run it from the peers venv (bench/README.md)"
    )

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # movierec, if not installed

import machine  # noqa: E402

from movierec import metrics, pipeline  # noqa: E402
from movierec.data.load import load  # noqa: E402
from movierec.recommend.topk import top_k_rows  # noqa: E402

K = 10
RELEVANCE = 4.0
THREADS = 1
"""Threads for BLAS, torch and each library: one, as the machine's two cores are shared with
other jobs; under that load one thread was as fast as two (a 4000 x 4000 inverse, VAECF)."""
BLOCK = 2048  # users scored at once


# --- data and protocol ----------------------------------------------------------------------


@dataclass
class Train:
    """Training ratings over movierec's index: (user, item, rating) and derived matrices."""

    u: np.ndarray
    i: np.ndarray
    r: np.ndarray
    n_users: int
    n_items: int

    def __post_init__(self) -> None:
        self.user_counts = np.bincount(self.u, minlength=self.n_users)
        self.item_counts = np.bincount(self.i, minlength=self.n_items)
        self.seen = self.matrix(np.ones(len(self.u), dtype=np.float32))

    def matrix(self, values: np.ndarray, keep: np.ndarray | None = None) -> sp.csr_matrix:
        """users x items CSR of ``values`` (rows ``keep`` only)."""
        u, i, v = self.u, self.i, values
        if keep is not None:
            u, i, v = u[keep], i[keep], v[keep]
        m = sp.csr_matrix((v.astype(np.float32), (u, i)), shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        m.sort_indices()
        return m


def train_of(*parts) -> Train:
    first = parts[0]
    return Train(
        np.concatenate([p.user_idx for p in parts]).astype(np.int64),
        np.concatenate([p.item_idx for p in parts]).astype(np.int64),
        np.concatenate([p.rating for p in parts]).astype(np.float32),
        first.n_users,
        first.n_items,
    )


INPUTS = ("binary", "binary_ge4", "rating", "bm25")


def implicit_input(train: Train, how: str) -> sp.csr_matrix:
    """users x items matrix as implicit's MovieLens example builds it, or a variant.

    ``binary``: 1 for every rating; ``binary_ge4``: 1 for ratings >= 4, others dropped;
    ``rating``: the rating as confidence; ``bm25``: implicit's example, bm25_weight(B=0.9) * 5
    of the ratings >= 4, weighted with items as rows (the example's items x users matrix).
    """
    from implicit.nearest_neighbours import bm25_weight

    ones = np.ones(len(train.u), dtype=np.float32)
    if how == "binary":
        return train.matrix(ones)
    if how == "binary_ge4":
        return train.matrix(ones, train.r >= RELEVANCE)
    if how == "rating":
        return train.matrix(train.r)
    if how == "bm25":
        x = train.matrix(ones, train.r >= RELEVANCE)
        return (bm25_weight(x.T.tocoo(), B=0.9) * 5).T.tocsr().astype(np.float32)
    raise ValueError(how)


Scorer = Callable[[np.ndarray], np.ndarray]
"""Users (B,) -> float (B, n_items) scores; -inf or NaN for items the model cannot list."""


def popular_order(train: Train) -> np.ndarray:
    """Items with training ratings by count of training ratings, best first (ties to the lower index)."""
    score = np.where(train.item_counts > 0, train.item_counts.astype(np.float64), -np.inf)
    return top_k_rows(score[None, :], int((train.item_counts > 0).sum()))[0]


def evaluate(scorer: Scorer, train: Train, held, fallback: np.ndarray | None = None) -> dict:
    """movierec's evaluate_ranking protocol on ``held`` (val or test) for a model trained on ``train``.

    ``fallback`` (bool, n_users): users with training ratings that the model itself cannot
    score (e.g. no rating >= 4 when trained on those only); they get the most-popular
    list without their rated items, counted in ``n_users_fallback``.
    """
    users = held.user_idx.astype(np.int64)
    relevant = held.rating >= RELEVANCE
    users, items = users[relevant], held.item_idx.astype(np.int64)[relevant]
    eval_users, n_relevant = np.unique(users, return_counts=True)
    n_items = train.n_items
    pos = np.searchsorted(eval_users, users)
    rel_keys = np.unique(pos * n_items + items)
    lists = np.full((len(eval_users), K), -1, dtype=np.int64)
    warm = train.user_counts[eval_users] > 0
    cold_items = train.item_counts == 0
    top_pop = popular_order(train)
    lists[~warm, : min(K, len(top_pop))] = top_pop[:K]
    fb = np.zeros(len(eval_users), dtype=bool)
    if fallback is not None:
        fb = warm & fallback[eval_users]
    pop_score = np.where(cold_items, -np.inf, train.item_counts.astype(np.float64))
    model_rows = np.flatnonzero(warm & ~fb)
    for s in range(0, len(model_rows), BLOCK):
        rows = model_rows[s : s + BLOCK]
        scores = np.asarray(scorer(eval_users[rows]), dtype=np.float64).copy()
        lists[rows] = top_k_rows(_mask(scores, train, eval_users[rows], cold_items), K)
    fb_rows = np.flatnonzero(fb)
    if len(fb_rows):
        scores = np.repeat(pop_score[None, :], len(fb_rows), axis=0)
        lists[fb_rows] = top_k_rows(_mask(scores, train, eval_users[fb_rows], cold_items), K)
    keys = np.arange(len(eval_users))[:, None] * n_items + lists
    hits = (lists >= 0) & np.isin(keys, rel_keys)
    out = metrics.ranking_metrics(hits, n_relevant)
    out["coverage"] = metrics.catalogue_coverage(lists, n_items)
    out["n_users_popular"] = int((~warm).sum())
    out["n_users_fallback"] = int(fb.sum())
    out["n_short_lists"] = int((lists < 0).any(axis=1).sum())
    return out


def _mask(scores: np.ndarray, train: Train, users: np.ndarray, cold_items: np.ndarray) -> np.ndarray:
    scores[~np.isfinite(scores)] = -np.inf
    seen = train.seen[users]
    scores[np.repeat(np.arange(len(users)), np.diff(seen.indptr)), seen.indices] = -np.inf
    scores[:, cold_items] = -np.inf
    return scores


# --- peers --------------------------------------------------------------------------------------
# Each peer: fit(train, config, seed) -> (scorer, fallback users or None). Grids are staged:
# every stage tries its axes' product at the best settings found so far (stage 1 at the base).


@dataclass
class Peer:
    name: str
    library: str
    fit: Callable
    base: dict
    stages: list[dict]
    note: str = ""
    default: bool = True


def fit_popular(train: Train, config: dict, seed: int):
    score = train.item_counts.astype(np.float64)
    return (lambda users: np.repeat(score[None, :], len(users), axis=0)), None


def _no_users(matrix: sp.csr_matrix) -> np.ndarray:
    return np.diff(matrix.indptr) == 0


def fit_implicit_als(train: Train, config: dict, seed: int):
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    x = implicit_input(train, config["input"])
    model = AlternatingLeastSquares(
        factors=config["factors"], regularization=config["regularization"], alpha=config["alpha"],
        iterations=config["iterations"], random_state=seed, num_threads=THREADS,
    )  # fmt: skip
    with threadpool_limits(1, "blas"):
        model.fit(x, show_progress=False)
    uf, itf = np.asarray(model.user_factors), np.asarray(model.item_factors)
    return (lambda users: uf[users] @ itf.T), _no_users(x)


def fit_implicit_bpr(train: Train, config: dict, seed: int):
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    from threadpoolctl import threadpool_limits

    x = implicit_input(train, config["input"])
    model = BayesianPersonalizedRanking(
        factors=config["factors"], learning_rate=config["learning_rate"],
        regularization=config["regularization"], iterations=config["iterations"],
        random_state=seed, num_threads=1,  # one thread: its Hogwild updates are not repeatable on more
    )  # fmt: skip
    with threadpool_limits(1, "blas"):
        model.fit(x, show_progress=False)
    uf, itf = np.asarray(model.user_factors), np.asarray(model.item_factors)
    return (lambda users: uf[users] @ itf.T), _no_users(x)


def _cornac_dataset(train: Train, how: str, seed: int):
    import cornac

    keep = np.ones(len(train.u), dtype=bool) if how != "binary_ge4" else train.r >= RELEVANCE
    values = train.r if how == "rating" else np.ones(len(train.u), dtype=np.float32)
    triples = [
        (str(u), str(i), float(v))
        for u, i, v in zip(train.u[keep].tolist(), train.i[keep].tolist(), values[keep].tolist(), strict=True)
    ]
    ds = cornac.data.Dataset.from_uir(triples, seed=seed)
    user_of = np.full(train.n_users, -1, dtype=np.int64)  # movierec user -> cornac user
    for uid, cu in ds.uid_map.items():
        user_of[int(uid)] = cu
    item_of = np.empty(ds.num_items, dtype=np.int64)  # cornac item -> movierec item
    for iid, ci in ds.iid_map.items():
        item_of[ci] = int(iid)
    return ds, user_of, item_of


def _cornac_fit_model(make: Callable, train: Train, config: dict, seed: int):
    ds, user_of, item_of = _cornac_dataset(train, config["input"], seed)
    model = make(config, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(ds)
    return model, user_of, item_of


def _cornac_scorer(model, train: Train, user_of: np.ndarray, item_of: np.ndarray) -> Scorer:
    def scorer(users: np.ndarray) -> np.ndarray:
        out = np.full((len(users), train.n_items), -np.inf)
        for row, u in enumerate(users):
            out[row, item_of] = np.asarray(model.score(int(user_of[u])), dtype=np.float64).ravel()
        return out

    return scorer


def _cornac_fit(make: Callable, train: Train, config: dict, seed: int):
    model, user_of, item_of = _cornac_fit_model(make, train, config, seed)
    return _cornac_scorer(model, train, user_of, item_of), user_of < 0


def cornac_fit(make: Callable) -> Callable:
    return lambda train, config, seed: _cornac_fit(make, train, config, seed)


def make_ease(c: dict, seed: int):
    import cornac

    return cornac.models.EASE(lamb=c["lamb"], posB=c["posB"], seed=seed, verbose=False)


_EASE_CACHE: dict = {}


def fit_cornac_ease(train: Train, config: dict, seed: int):
    """cornac's EASE; while tuning, posB=True and False share one matrix inverse.

    cornac's ``EASE.fit`` computes B from the inverse of X'X + lamb I and, with posB, then
    sets its negative entries to 0, nothing else. Tuning fits cornac's EASE with
    posB=False once per (input, lamb) and makes the posB=True model from a copy of that
    fitted model with ``B[B < 0] = 0``, the same model cornac's own fit gives, for half the
    cost. The final fit (and its seconds) is always cornac's own ``fit`` with the chosen posB.
    """
    import copy

    if not config.get("_tuning"):
        _EASE_CACHE.clear()
        return _cornac_fit(make_ease, train, config, seed)
    key = (id(train), config["input"], config["lamb"])
    if _EASE_CACHE.get("key") != key:
        _EASE_CACHE.clear()
        _EASE_CACHE["key"] = key
        _EASE_CACHE["fitted"] = _cornac_fit_model(make_ease, train, {**config, "posB": False}, seed)
    model, user_of, item_of = _EASE_CACHE["fitted"]
    if config["posB"]:
        model = copy.copy(model)
        model.B = np.where(model.B < 0, 0.0, model.B)
    return _cornac_scorer(model, train, user_of, item_of), user_of < 0


def make_cornac_bpr(c: dict, seed: int):
    import cornac

    return cornac.models.BPR(
        k=c["k"], max_iter=c["max_iter"], learning_rate=c["learning_rate"], lambda_reg=c["lambda_reg"],
        seed=seed, verbose=False,
    )  # fmt: skip


def make_vaecf(c: dict, seed: int):
    import cornac

    return cornac.models.VAECF(
        k=c["k"], autoencoder_structure=[c["hidden"]], likelihood="mult", n_epochs=c["n_epochs"],
        batch_size=100, learning_rate=c["learning_rate"], beta=c["beta"], seed=seed, use_gpu=False,
    )  # fmt: skip


def make_bivaecf(c: dict, seed: int):
    import cornac

    return cornac.models.BiVAECF(
        k=c["k"], encoder_structure=[c["hidden"]], likelihood=c["likelihood"], n_epochs=c["n_epochs"],
        batch_size=128, learning_rate=c["learning_rate"], seed=seed, use_gpu=False,
    )  # fmt: skip


def make_recvae(c: dict, seed: int):
    import cornac

    return cornac.models.RecVAE(
        hidden_dim=c["hidden_dim"], latent_dim=c["latent_dim"], batch_size=500, gamma=c["gamma"],
        lr=c["lr"], n_epochs=c["n_epochs"], seed=seed, use_gpu=False,
    )  # fmt: skip


def _lenskit_data(train: Train):
    import pandas as pd
    from lenskit.data import from_interactions_df

    df = pd.DataFrame({"user_id": train.u, "item_id": train.i, "rating": train.r.astype(np.float64)})
    return from_interactions_df(df, user_col="user_id", item_col="item_id", rating_col="rating")


def _lenskit_fit(model, train: Train, seed: int):
    from lenskit.data import ItemList, RecQuery
    from lenskit.training import TrainingOptions

    data = _lenskit_data(train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train(data, TrainingOptions(rng=seed))
    all_items = ItemList(item_ids=np.arange(train.n_items))
    seen = train.matrix(train.r)

    def scorer(users: np.ndarray) -> np.ndarray:
        out = np.full((len(users), train.n_items), -np.inf)
        for row, u in enumerate(users):
            lo, hi = seen.indptr[u], seen.indptr[u + 1]
            history = ItemList(item_ids=seen.indices[lo:hi].astype(np.int64), rating=seen.data[lo:hi])
            query = RecQuery(user_id=int(u), user_items=history)
            scored = model(query, all_items)
            out[row, scored.ids().astype(np.int64)] = scored.scores("numpy")
        return out

    return scorer, None


def fit_lenskit_iknn(train: Train, config: dict, seed: int):
    from lenskit.knn import ItemKNNScorer

    model = ItemKNNScorer(max_nbrs=config["max_nbrs"], min_nbrs=config["min_nbrs"], feedback=config["feedback"])
    return _lenskit_fit(model, train, seed)


def fit_lenskit_imf(train: Train, config: dict, seed: int):
    from lenskit.als import ImplicitMFScorer

    model = ImplicitMFScorer(
        embedding_size=config["embedding_size"], regularization=config["regularization"], weight=config["weight"],
        epochs=config["epochs"], use_ratings=config["use_ratings"],
    )  # fmt: skip
    return _lenskit_fit(model, train, seed)


def peers() -> list[Peer]:
    """Every peer and its grid; ``default=False`` ones run only when named in --peers."""
    imf_stages = [
        {"weight": [1.0, 10.0, 40.0], "embedding_size": [25, 50, 100]},
        {"regularization": [0.01, 0.1, 1.0]},
        {"epochs": [10, 20, 40]},
    ]
    return [
        Peer("MostPopular", "movierec protocol", fit_popular, {}, []),
        Peer(
            "implicit ALS", "implicit", fit_implicit_als,
            {"input": "binary", "factors": 64, "regularization": 0.01, "alpha": 1.0, "iterations": 15},
            [
                {"input": list(INPUTS), "alpha": [1.0, 10.0, 40.0]},
                {"factors": [32, 64, 128], "regularization": [0.01, 0.1]},
                {"iterations": [15, 30, 50]},
            ],
        ),
        Peer(
            "implicit BPR", "implicit", fit_implicit_bpr,
            {"input": "binary", "factors": 64, "learning_rate": 0.01, "regularization": 0.01, "iterations": 100},
            [
                {"input": ["binary", "binary_ge4"], "learning_rate": [0.001, 0.005, 0.01, 0.05]},
                {"factors": [32, 64, 128], "regularization": [0.001, 0.01, 0.1]},
                {"iterations": [100, 200, 400]},
            ],
            "BPR uses only which entries are non-zero, so rating and bm25 inputs equal binary / binary_ge4.",
        ),
        Peer(
            "cornac EASE", "cornac", fit_cornac_ease,
            {"input": "rating", "lamb": 500, "posB": True},
            [{
                "_joint": [{"input": "rating", "lamb": v} for v in (500, 1500, 5000)]
                + [{"input": "binary", "lamb": v} for v in (100, 300, 1000)],
                "posB": [True, False],
            }],
            "lamb grids per input: X'X of raw ratings is about 13x that of binary values.",
        ),
        Peer(
            "cornac BPR", "cornac", cornac_fit(make_cornac_bpr),
            {"input": "rating", "k": 10, "max_iter": 100, "learning_rate": 0.001, "lambda_reg": 0.01},
            [
                {"input": ["rating", "binary_ge4"], "learning_rate": [0.001, 0.01, 0.05]},
                {"k": [10, 50, 100], "lambda_reg": [0.001, 0.01, 0.1]},
                {"max_iter": [100, 200, 400]},
            ],
            "cornac's BPR uses only which entries are non-zero.",
        ),
        Peer(
            "cornac VAECF", "cornac", cornac_fit(make_vaecf),
            {"input": "rating", "k": 10, "hidden": 20, "n_epochs": 100, "learning_rate": 0.001, "beta": 1.0},
            [
                {"input": ["rating", "binary_ge4"], "learning_rate": [0.001, 0.005]},
                {"_joint": [{"k": 10, "hidden": 20}, {"k": 50, "hidden": 200}, {"k": 100, "hidden": 600}]},
                {"beta": [1.0, 0.2]},
                {"n_epochs": [100, 200]},
            ],
            "VAECF binarises its input.",
        ),
        Peer(
            "cornac BiVAECF", "cornac", cornac_fit(make_bivaecf),
            {"input": "rating", "k": 10, "hidden": 20, "likelihood": "pois", "n_epochs": 100, "learning_rate": 0.001},
            [
                {"input": ["rating", "binary_ge4"], "_joint": [{"k": 10, "hidden": 20}, {"k": 50, "hidden": 100}]},
                {"learning_rate": [0.001, 0.005]},
            ],
            "BiVAECF binarises its input.",
        ),
        Peer(
            "cornac RecVAE", "cornac", cornac_fit(make_recvae),
            {"input": "rating", "hidden_dim": 600, "latent_dim": 200, "gamma": 0.005, "lr": 0.0005, "n_epochs": 50},
            [{"input": ["rating", "binary"]}],
            "Opt-in (--peers recvae): 4-15 s an epoch here at its defaults, 3-13 min a fit.",
            default=False,
        ),
        Peer(
            "LensKit ItemKNN explicit", "lenskit", fit_lenskit_iknn,
            {"feedback": "explicit", "max_nbrs": 20, "min_nbrs": 1},
            [{"max_nbrs": [5, 10, 20, 50, 100, 200]}, {"min_nbrs": [1, 2, 5, 10]}],
            "Predicts ratings; items with no neighbour among the user's ratings get no score (not listed).",
        ),
        Peer(
            "LensKit ItemKNN implicit", "lenskit", fit_lenskit_iknn,
            {"feedback": "implicit", "max_nbrs": 20, "min_nbrs": 1},
            [{"max_nbrs": [5, 10, 20, 50, 100, 200]}],
        ),
        Peer(
            "LensKit ImplicitMF", "lenskit", fit_lenskit_imf,
            {"use_ratings": False, "embedding_size": 50, "regularization": 0.1, "weight": 40.0, "epochs": 10},
            imf_stages,
        ),
        Peer(
            "LensKit ImplicitMF ratings", "lenskit", fit_lenskit_imf,
            {"use_ratings": True, "embedding_size": 50, "regularization": 0.1, "weight": 40.0, "epochs": 10},
            imf_stages,
            "use_ratings=True: confidence is rating x weight.",
        ),
    ]  # fmt: skip


QUICK_STAGE = 2
"""--quick: each stage axis cut to its first QUICK_STAGE values (a smoke test)."""


def tune(peer: Peer, fit_train: Train, val, seed: int, quick: bool, log) -> tuple[dict, list[dict]]:
    """Staged grid search on val NDCG@10; returns the best config and every tried one."""
    best = dict(peer.base)
    tried: dict[str, dict] = {}

    def trial(config: dict) -> float:
        key = json.dumps(config, sort_keys=True)
        if key not in tried:
            t0 = time.perf_counter()
            scorer, fallback = peer.fit(fit_train, {**config, "_tuning": True}, seed)
            fit_s = time.perf_counter() - t0
            m = evaluate(scorer, fit_train, val, fallback)
            tried[key] = {"config": dict(config), "val_ndcg": m["ndcg"], "val_recall": m["recall"],
                          "fit_seconds": fit_s, "n_users_fallback": m["n_users_fallback"]}  # fmt: skip
            log(f"    {config} val ndcg {m['ndcg']:.4f} ({fit_s:.1f}s)")
        return tried[key]["val_ndcg"]

    if not peer.stages:
        trial(best)
    best_ndcg = -1.0
    for stage in peer.stages:
        # Each stage: the product of its axes; "_joint" is a list of settings tried together.
        cut = (lambda v: v[:QUICK_STAGE]) if quick else (lambda v: v)
        joint = cut(stage.get("_joint", [{}]))
        axes = {k: cut(v) for k, v in stage.items() if k != "_joint"}
        for together, values in itertools.product(joint, itertools.product(*axes.values())):
            config = {**best, **together, **dict(zip(axes, values, strict=True))}
            ndcg = trial(config)
            if ndcg > best_ndcg:  # strict: ties keep the earlier (the grid's order)
                best_ndcg, best_config = ndcg, config
        best = dict(best_config)
    return best, list(tried.values())


def movierec_source() -> dict:
    """The commit of the movierec checkout this ran against, and whether src/ had uncommitted changes."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "src"], cwd=root, capture_output=True, text=True)
        return {"commit": head or None, "src_dirty": bool(dirty.stdout.strip())}
    except OSError:
        return {"commit": None, "src_dirty": None}


def library_versions() -> dict:
    out = {}
    for name in ("implicit", "cornac", "lenskit", "torch", "numpy", "scipy", "pandas", "threadpoolctl", "movierec"):
        try:
            out[name] = version(name)
        except Exception:  # noqa: BLE001
            out[name] = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/work/shared/data/ml-latest-small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peers", default=None, help="comma-separated subset of peer names (substring match)")
    parser.add_argument(
        "--json", default=None, help="output file (default bench/results/ranking-peers-DATA-seedS.json)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: first two values of each grid axis")
    parser.add_argument(
        "--update", action="store_true", help="rerun only --peers and replace their entries in an existing JSON"
    )
    args = parser.parse_args()

    import torch

    torch.set_num_threads(THREADS)
    started = time.perf_counter()
    ratings = load(args.data)
    parts = pipeline.split(ratings, pipeline.SplitConfig(seed=args.seed))
    fit_train = train_of(parts.fit)
    full_train = train_of(parts.fit, parts.val)
    data_name = Path(args.data.rstrip("/")).name
    out_path = Path(args.json) if args.json else (
        Path(__file__).resolve().parent / "results" / f"ranking-peers-{data_name}-seed{args.seed}.json"
    )  # fmt: skip

    def log(msg: str) -> None:
        print(msg, flush=True)

    info = {
        "script": "bench/ranking_peers.py",
        "versions": library_versions(),
        "movierec_source": movierec_source(),
        "machine": {**machine.describe(), "threads": THREADS},
        "data": data_name,
        "n_ratings": len(ratings),
        "split": {"how": "random", "test_fraction": 0.2, "val_fraction": 0.05, "seed": args.seed},
        "n_fit": len(parts.fit), "n_val": len(parts.val), "n_test": len(parts.test),
        "n_users": parts.fit.n_users, "n_items": parts.fit.n_items,
        "protocol": (
            "movierec evaluate_ranking: k=10, relevant = held-out rating >= 4; each user with a relevant "
            "held-out item ranks ALL items not rated in training (no sampled negatives); users with no "
            "training ratings get the most-popular list (count of training ratings); items never rated in "
            "training are never listed. Tuned on val (trained on fit, best NDCG@10), then retrained with the "
            "chosen settings on fit + val and scored once on test."
        ),
        "quick": args.quick,
        "results": [],
    }  # fmt: skip
    m = info["machine"]
    log(f"{data_name} seed {args.seed}: fit {len(parts.fit)}, val {len(parts.val)}, test {len(parts.test)}; "
        f"{m['cpu']}, {m['cores']} cores, load {m['load_average']}")  # fmt: skip
    wanted = [w.strip().lower() for w in args.peers.split(",")] if args.peers else None
    for peer in peers():
        if (not wanted and not peer.default) or (wanted and not any(w in peer.name.lower() for w in wanted)):
            continue
        log(f"{peer.name}:")
        entry: dict = {"peer": peer.name, "library": peer.library, "note": peer.note}
        t_peer = time.perf_counter()
        try:
            best, tried = tune(peer, fit_train, parts.val, args.seed, args.quick, log)
            t0 = time.perf_counter()
            scorer, fallback = peer.fit(full_train, best, args.seed)
            fit_s = time.perf_counter() - t0
            test = evaluate(scorer, full_train, parts.test, fallback)
            val_best = max(t["val_ndcg"] for t in tried)
            entry.update({"chosen": best, "val_ndcg": val_best, "tried": tried, "n_tried": len(tried),
                          "test": test, "fit_seconds": fit_s})  # fmt: skip
            log(f"  chosen {best}: val ndcg {val_best:.4f}; test ndcg {test['ndcg']:.4f} recall {test['recall']:.4f} "
                f"({fit_s:.1f}s fit)")  # fmt: skip
        except Exception as e:  # noqa: BLE001 - one peer failing must not lose the others
            entry["error"] = f"{type(e).__name__}: {e}"
            log(f"  FAILED: {entry['error']}")
        entry["seconds_total"] = time.perf_counter() - t_peer
        info["results"].append(entry)
    info["seconds_total"] = time.perf_counter() - started

    if args.update and out_path.exists():
        old = json.loads(out_path.read_text())
        rerun = {e["peer"] for e in info["results"]}
        order = [p.name for p in peers()]
        kept = [e for e in old["results"] if e["peer"] not in rerun]
        old["results"] = sorted(kept + info["results"], key=lambda e: order.index(e["peer"]))
        old.setdefault("updates", []).append({
            "peers": sorted(rerun), "machine": info["machine"], "versions": info["versions"],
            "movierec_source": info["movierec_source"], "seconds_total": info["seconds_total"],
        })  # fmt: skip
        info = old
    log("")
    log(f"{'dataset':<16} {'seed':>4} {'peer':<27} {'NDCG@10':>8} {'recall':>7} {'prec':>7} {'MAP':>7} "
        f"{'cover':>6} {'fit_s':>7}")  # fmt: skip
    for e in info["results"]:
        if "test" not in e:
            log(f"{data_name:<16} {args.seed:>4} {e['peer']:<27} failed: {e['error']}")
            continue
        t = e["test"]
        log(f"{data_name:<16} {args.seed:>4} {e['peer']:<27} {t['ndcg']:>8.4f} {t['recall']:>7.4f} "
            f"{t['precision']:>7.4f} {t['map']:>7.4f} {t['coverage']:>6.3f} {e['fit_seconds']:>7.1f}")  # fmt: skip
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(info, indent=1) + "\n")
    log(f"wrote {out_path} ({time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()
