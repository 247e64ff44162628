"""Item-based k-nearest neighbours on top of baseline biases (Koren's KNNBaseline).

Prediction for user u and item i (centred ratings):

    b_u + b_i + sum_j s_ij (r_uj - b_u - b_j) / (damping + sum_j s_ij)

over the ``k`` items j most similar to i among those u rated (positive similarities
only); with none, the biases alone. The small ``damping`` keeps a few weak neighbours
from counting at full weight: the classic formula (damping 0) averaged noise into
predictions on noisy synthetic data, 0.05 RMSE worse than the biases alone, and 0.1 was
also 0.005 better on ml-latest-small's validation part. Similarity is the cosine of the
items' baseline residuals, shrunk by support:

    s_ij = <e_i, e_j> / (|e_i| |e_j|) * (n_ij - 1) / (n_ij - 1 + shrinkage)

n_ij being the number of users who rated both. (On ml-latest-small this cosine, whose
norms run over all of an item's raters, beat Surprise's pearson_baseline by 0.007 RMSE.)

Only each item's ``neighbours`` most similar items are kept, found block by block with
sparse products, so no items x items matrix is ever held: at ML-20M scale (26,744 items)
a dense one would take 2.9 GB. The training residuals are kept too (the model needs them
to predict), as a user-major sparse matrix.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from movierec.errors import ConfigError
from movierec.models.base import ModelSpec, RaterData, RatingModel, Sweeps, predict_centred
from movierec.models.baseline import BaselineConfig, fit_biases, shrunk_bias


@dataclass(frozen=True)
class KNNConfig:
    """Neighbourhood size, similarity shrinkage and the biases' regularisation."""

    k: int = 40
    """Neighbours a prediction averages over (the most similar items the user rated)."""
    neighbours: int = 500
    """Most similar items kept per item (the candidates a prediction draws from)."""
    shrinkage: float = 100.0
    """Pulls the similarity of items few users share toward 0: halved at this many co-raters."""
    damping: float = 0.1
    """Added to the sum of similarities that divides the neighbours' residuals: with weak or few
    neighbours the prediction stays near the biases instead of averaging noise at full weight."""
    reg_user: float = 15.0
    """Regularisation of the user biases (as ``baseline``)."""
    reg_item: float = 10.0
    """Regularisation of the item biases (as ``baseline``)."""
    candidates: int = 4096
    """Neighbours are drawn from this many of the most-rated items (all items, below that)."""
    block: int = 256
    """Candidate items scored together: bounds memory at about (users + items) x block floats."""

    def __post_init__(self) -> None:
        if min(self.k, self.neighbours, self.candidates, self.block) < 1:
            raise ConfigError("k, neighbours, candidates and block must be at least 1")
        if self.shrinkage < 0 or self.damping < 0 or self.reg_user < 0 or self.reg_item < 0:
            raise ConfigError("shrinkage and the regularisation must be >= 0")


class KNN(RatingModel):
    """Baselines, each item's top similar items, and the training residuals by user."""

    neighbour_idx: Tensor
    neighbour_sim: Tensor
    seen_indptr: Tensor
    seen_items: Tensor
    seen_residual: Tensor

    def __init__(self, n_users: int, n_items: int, config: KNNConfig) -> None:
        super().__init__()
        self.n_users, self.n_items, self.k = n_users, n_items, config.k
        self.reg_user, self.damping = config.reg_user, config.damping
        width = max(min(config.neighbours, n_items - 1), 1)
        # Parameters (never trained) rather than buffers, so the model has a device to report.
        self.user_bias = nn.Parameter(torch.zeros(n_users), requires_grad=False)
        self.item_bias = nn.Parameter(torch.zeros(n_items), requires_grad=False)
        self.register_buffer("neighbour_idx", torch.zeros(n_items, width, dtype=torch.int64))
        self.register_buffer("neighbour_sim", torch.zeros(n_items, width))
        # Training residuals, user-major (CSR); their length is the data's, so set by fit or load.
        self.register_buffer("seen_indptr", torch.zeros(n_users + 1, dtype=torch.int64))
        self.register_buffer("seen_items", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("seen_residual", torch.zeros(0))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        # The residual buffers are as long as the training data: take the saved length.
        for name in ("seen_items", "seen_residual"):
            saved = state_dict.get(prefix + name)
            if saved is not None:
                self._buffers[name] = torch.empty_like(saved, device=self._buffers[name].device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def check(self) -> None:
        nnz = len(self.seen_items)
        indptr = self.seen_indptr
        if int(indptr[0]) != 0 or int(indptr[-1]) != nnz or bool((indptr[1:] < indptr[:-1]).any()):
            raise ValueError("knn's seen_indptr must rise from 0 to the number of stored residuals")
        for name, t in (("seen_items", self.seen_items), ("neighbour_idx", self.neighbour_idx)):
            if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.n_items):
                raise ValueError(f"knn's {name} holds item indices out of range")
        if len(self.seen_residual) != nnz:
            raise ValueError("knn's seen_residual and seen_items differ in length")

    def forward(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        out = self.user_bias[user_idx] + self.item_bias[item_idx]
        if len(user_idx) == 0:
            return out
        # Pairs are taken a few hundred users at a time: their residuals go into a dense
        # (users x items) block, so looking up "did u rate neighbour j" is a gather.
        order = torch.argsort(user_idx, stable=True)
        uniq, counts = torch.unique_consecutive(user_idx[order], return_counts=True)
        ends = torch.cumsum(counts, 0)
        chunk = max(1, (1 << 24) // max(self.n_items, 1))
        for c in range(0, len(uniq), chunk):
            last = min(c + chunk, len(uniq)) - 1
            rows = order[int(ends[c] - counts[c]) : int(ends[last])]
            block_users = uniq[c : last + 1]
            dense = self._residual_rows(block_users)
            local = torch.searchsorted(block_users, user_idx[rows])
            out[rows] += self._neighbourhood(dense, local, item_idx[rows])
        return out

    def _residual_rows(self, users: Tensor) -> Tensor:
        """(len(users), n_items) residuals of those users; NaN where a user has no rating."""
        lo, hi = self.seen_indptr[users], self.seen_indptr[users + 1]
        lengths = hi - lo
        row = torch.repeat_interleave(torch.arange(len(users), device=users.device), lengths)
        pos = torch.repeat_interleave(lo - torch.cumsum(lengths, 0) + lengths, lengths) + torch.arange(
            int(lengths.sum()), device=users.device
        )
        dense = torch.full((len(users), self.n_items), float("nan"), device=users.device)
        dense[row, self.seen_items[pos]] = self.seen_residual[pos]
        return dense

    def _neighbourhood(self, dense: Tensor, local: Tensor, items: Tensor) -> Tensor:
        """The similarity-weighted mean residual of each pair's top-k rated neighbours."""
        nbr = self.neighbour_idx[items]  # (B, width), most similar first
        sim = self.neighbour_sim[items]
        res = dense[local[:, None], nbr]
        usable = ~torch.isnan(res) & (sim > 0)
        # Lists are sorted by similarity, so the first k usable ones are the top k.
        usable &= torch.cumsum(usable, 1) <= self.k
        w = torch.where(usable, sim, torch.zeros((), device=sim.device))
        den = w.sum(1)
        num = (w * torch.nan_to_num(res)).sum(1)
        return torch.where(den > 0, num / (den + self.damping).clamp_min(1e-12), torch.zeros((), device=den.device))

    def fold_in(self, item_idx: Tensor, target: Tensor) -> Callable[[Tensor], Tensor]:
        """A new user: a regularised bias from their ratings, then the neighbourhood of their residuals."""
        base = target - self.item_bias[item_idx]
        b_u = shrunk_bias(base, self.reg_user)
        dense = torch.full((1, self.n_items), float("nan"), device=target.device)
        dense[0, item_idx] = (base - b_u).float()

        def scorer(items: Tensor) -> Tensor:
            local = torch.zeros(len(items), dtype=torch.int64, device=items.device)
            return b_u + self.item_bias[items] + self._neighbourhood(dense, local, items)

        return scorer


def top_neighbours(
    user_idx: np.ndarray, item_idx: np.ndarray, residual: np.ndarray, n_users: int, n_items: int, config: KNNConfig
) -> tuple[Tensor, Tensor]:
    """Each item's ``neighbours`` most similar items and their similarities, most similar first.

    Neighbours are drawn from the ``candidates`` most-rated items (all items of smaller
    catalogues), a block of them at a time: each block's co-rating sums and counts with
    every item are two sparse x dense products (the block's columns dense), and only the
    running top of each row is kept, so memory stays at (users + items) x block floats
    beside the item-major copy of the ratings: at ML-20M's shape 0.8 GB above the data
    (bench/NOTES.md), where taking each block's ratings by a mask over all of them, with
    int64 copies of the inputs, took 1.8 GB.
    (torch's sparse x sparse product would do less arithmetic, but leaks memory on each
    call in torch 2.13: 10 GB at ML-20M scale.)
    """
    with warnings.catch_warnings():
        # torch calls its sparse CSR support "beta"; the products used here are long-standing.
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        return _top_neighbours(user_idx, item_idx, residual, n_users, n_items, config)


def _top_neighbours(
    user_idx: np.ndarray, item_idx: np.ndarray, residual: np.ndarray, n_users: int, n_items: int, config: KNNConfig
) -> tuple[Tensor, Tensor]:
    width = max(min(config.neighbours, n_items - 1), 1)
    # Views of the caller's arrays where their dtypes allow: at ML-20M every copy is 120 MB.
    u = torch.from_numpy(np.asarray(user_idx, dtype=np.int64))
    i = torch.from_numpy(np.asarray(item_idx, dtype=np.int64))
    r = torch.from_numpy(np.asarray(residual, dtype=np.float32))
    norm = torch.zeros(n_items).index_add_(0, i, r * r).sqrt()
    counts = torch.bincount(i, minlength=n_items)
    # The most-rated items first (ties to the lower index), so a cut keeps the best-supported.
    candidates = torch.argsort(-counts, stable=True)[: min(config.candidates, n_items)]
    # Item-major CSR built directly (one sort, no COO copies): residuals and 1s share the structure.
    order = torch.argsort(i * n_users + u)
    crow = torch.zeros(n_items + 1, dtype=torch.int64)
    crow[1:] = torch.cumsum(counts, 0)
    col, val = u[order], r[order]
    del order
    by_item_csr = torch.sparse_csr_tensor(crow, col, val, (n_items, n_users), check_invariants=False)
    ones_csr = torch.sparse_csr_tensor(crow, col, torch.ones(len(col)), (n_items, n_users), check_invariants=False)
    top_sim = torch.full((n_items, width), float("-inf"))
    top_idx = torch.zeros(n_items, width, dtype=torch.int32)  # int32 while merging: half the memory
    for start in range(0, len(candidates), config.block):
        block = candidates[start : start + config.block]
        size = len(block)
        # The block's ratings are its items' rows of the CSR: no pass over all ratings.
        lo, lengths = crow[block], counts[block]
        column = torch.repeat_interleave(torch.arange(size), lengths)
        pos = torch.repeat_interleave(lo - torch.cumsum(lengths, 0) + lengths, lengths) + torch.arange(len(column))
        dense_r = torch.zeros(n_users, size)
        dense_r[col[pos], column] = val[pos]
        dense_1 = torch.zeros(n_users, size)
        dense_1[col[pos], column] = 1.0
        del pos, column
        dot = torch.sparse.mm(by_item_csr, dense_r)  # (n_items, size): sum over co-raters of r_ui r_uj
        support = torch.sparse.mm(ones_csr, dense_1)  # (n_items, size): number of co-raters
        del dense_r, dense_1
        shrunk = (support - 1).clamp_min(0)
        shrunk = shrunk / (shrunk + config.shrinkage) if config.shrinkage > 0 else (shrunk > 0).float()
        sim = dot / (norm[:, None] * norm[None, block]).clamp_min(1e-12) * shrunk
        del dot, support, shrunk
        sim[block, torch.arange(size)] = float("-inf")  # never its own neighbour
        merged_sim = torch.cat([top_sim, sim], 1)
        merged_idx = torch.cat([top_idx, block.int().expand(n_items, size)], 1)
        del sim, top_sim, top_idx
        top_sim, kept = merged_sim.topk(width, dim=1)
        del merged_sim
        top_idx = merged_idx.gather(1, kept)
        del merged_idx, kept
    return top_idx.long(), top_sim.clamp_min(0)


class _Sweeps(Sweeps):
    """One pass: biases, then each item's neighbours from the residuals."""

    planned = 1

    def __init__(self, model: RatingModel, config: KNNConfig, data: RaterData) -> None:
        assert isinstance(model, KNN)  # the registry pairs these sweeps with this build
        self.model, self.config, self.data = model, config, data

    @torch.no_grad()
    def sweep(self, epoch: int) -> float:
        model, config, data = self.model, self.config, self.data
        u = data.user_idx.cpu().numpy()
        i = data.item_idx.cpu().numpy()
        y = data.target.cpu().numpy().astype(np.float64)
        n_users, n_items = model.n_users, model.n_items
        b_u, b_i = fit_biases(u, i, y, n_users, n_items, BaselineConfig(config.reg_user, config.reg_item))
        residual = (y - b_u[u] - b_i[i]).astype(np.float32)
        idx, sim = top_neighbours(u, i, residual, n_users, n_items, config)
        order = np.lexsort((i, u))
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(u, minlength=n_users), out=indptr[1:])
        device = data.target.device
        model.user_bias.copy_(torch.from_numpy(b_u))
        model.item_bias.copy_(torch.from_numpy(b_i))
        model.neighbour_idx.copy_(idx)
        model.neighbour_sim.copy_(sim)
        model.seen_indptr.copy_(torch.from_numpy(indptr))
        model._buffers["seen_items"] = torch.from_numpy(i[order].astype(np.int64, copy=False)).to(device)
        model._buffers["seen_residual"] = torch.from_numpy(residual[order]).to(device)
        # The training loss on a seeded sample: predicting all 15.2M training ratings of ML-20M
        # from their 500 candidate neighbours took 130 s, three times the fit; 2^19 ratings
        # pin the mean squared error to about 0.2%.
        sample = torch.randperm(len(u), generator=data.generator)[:LOSS_SAMPLE].to(device)
        pred = predict_centred(model, data.user_idx[sample], data.item_idx[sample])
        return float(torch.mean((pred - data.target[sample]) ** 2))


LOSS_SAMPLE = 1 << 19
"""Training ratings the reported training loss is measured on (all of them in smaller logs)."""


def _build(config: KNNConfig, n_users: int, n_items: int, generator: torch.Generator) -> KNN:
    return KNN(n_users, n_items, config)


def _space(trial) -> tuple[dict, dict]:  # noqa: ANN001
    """What ``movierec tune`` searches: a trial -> (config fields, training settings)."""
    model = {
        "k": trial.suggest_int("k", 10, 120, log=True),
        "shrinkage": trial.suggest_float("shrinkage", 5.0, 500.0, log=True),
        "reg_user": trial.suggest_float("reg_user", 1.0, 50.0, log=True),
        "reg_item": trial.suggest_float("reg_item", 1.0, 50.0, log=True),
    }
    return model, {}


SPEC = ModelSpec(
    name="knn",
    summary="item-based k nearest neighbours on baseline residuals (shrunk cosine), as KNNBaseline",
    config_type=KNNConfig,
    build=_build,
    training={"epochs": 1},
    sweeps=_Sweeps,
    space=_space,
    one_pass=True,
)
