"""EASE (Steck 2019): a closed-form item-item model trained to reconstruct each user's ratings.

With X the users x items matrix of rating weights (``Ranker.weights``: r / r_max by
default), EASE learns the item-item matrix B that best predicts X from X without using
an item to predict itself:

    min_B |X - X B|^2 + l2 |B|^2   subject to diag(B) = 0

whose solution is B = I - P diagMat(1 / diag(P)), P = (X^T X + l2 I)^-1: one Gram matrix
and one inverse (Cholesky), no learning rate and no iterations.

Where the items have genres, they join X as extra rows, one per genre, weighted by
``genres`` (collective EASE, Jeunen, Van Balen & Goethals 2020): the Gram matrix gains
genres x F^T F, with F the genres x items 0/1 matrix, so two films of a genre are a little
alike before anyone has rated both. An item rated by a handful of users borrows most from
this; a popular one hardly notices. B stays items x items, so scoring is unchanged. A user's scores are
x_u B, a sum over the items they rated, so a new user is scored exactly as a known one,
and "because you rated j" is the term x_uj B_ji.

Both matrices are dense (n_items^2 floats each: 0.4 GB at 10,000 items, 2.9 GB at ML-20M's
26,744), and the Gram matrix costs n_users x n_items^2 multiply-adds; ``fits`` says
whether a catalogue is small enough, and the recommender picks ``ials`` when it is not.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from movierec.errors import ConfigError
from movierec.models.base import Ranker, RankerData, Sweeps, UserRows, ranker_spec

MAX_ITEMS = 20_000
"""Largest catalogue ``auto`` gives to EASE: its two dense matrices take 3.2 GB there."""
MAX_GRAM_FLOPS = 4e12
"""Largest n_users x n_items^2 ``auto`` gives to EASE: about a minute of products on 2 cores."""
MAX_GENRE_WEIGHT = 1000.0
"""Largest ``genres`` weight accepted: 100x the default, 10x the top of ``tune``'s range."""
USERS_PER_BLOCK = 2048
"""Users whose rows are made dense at once while the Gram matrix is summed."""


@dataclass(frozen=True)
class EASEConfig:
    """EASE's one hyperparameter, and how ratings become weights."""

    l2: float = 100.0
    """Ridge penalty on B: larger means smoother, more popular lists. Chosen on ml-latest-small's
    validation parts (50-200 within noise); Steck used 200-1000 on logs of 10-100x the size."""
    weighting: str = "rating"
    """``rating`` (X holds r / r_max) or ``binary`` (X holds 1 for every rating)."""
    genres: float = 10.0
    """Weight of each genre row added to X (0: ratings alone). Chosen on five folds of each
    ml-latest-small seed's training part (1-100 within noise of each other, all above 0; bench/NOTES.md)."""

    def __post_init__(self) -> None:
        if not 0 < self.l2 < math.inf:
            raise ConfigError(f"l2 must be a finite number > 0 (it keeps the Gram matrix invertible), got {self.l2}")
        if not 0 <= self.genres <= MAX_GENRE_WEIGHT:
            # Far past the ratings' own scale the genre rows swamp them, and float32 loses the Cholesky.
            limit = f"{MAX_GENRE_WEIGHT:g}"
            raise ConfigError(f"genres must be from 0 to {limit} (a weight on the genre rows), got {self.genres}")


def fits(n_users: int, n_items: int) -> bool:
    """True when EASE's dense matrices and Gram products are affordable for this catalogue."""
    return n_items <= MAX_ITEMS and n_users * n_items**2 <= MAX_GRAM_FLOPS


class EASE(Ranker):
    """The item-item matrix B (n_items, n_items), zero on the diagonal."""

    B: Tensor

    def __init__(self, n_items: int, config: EASEConfig) -> None:
        super().__init__(n_items, config.weighting)
        self.register_buffer("B", torch.zeros(n_items, n_items))

    def score(self, rows: UserRows) -> Tensor:
        w = self.weights(rows.ratings)
        if rows.n_rows == 1:  # a served request: the rated rows of B, weighted
            return (w @ self.B.index_select(0, rows.items))[None, :]
        with warnings.catch_warnings():
            # torch calls its sparse CSR support "beta"; this product is long-standing.
            warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
            x = torch.sparse_csr_tensor(rows.indptr, rows.items, w, (rows.n_rows, self.n_items), check_invariants=False)
            return torch.sparse.mm(x, self.B)

    def contributions(self, rows: UserRows, item_idx: Tensor) -> Tensor:
        w = self.weights(rows.ratings)
        # Columns first: a heavy user's rated rows of B would be thousands x n_items.
        return (self.B.index_select(1, item_idx).index_select(0, rows.items) * w[:, None]).T

    def similar(self, item_idx: Tensor) -> Tensor:
        # Row i of B: how much having rated i raises each other item's score.
        return self.B.index_select(0, item_idx)


def gram(data: RankerData, weights: Tensor, n_items: int) -> Tensor:
    """X^T X for X the users x items matrix of ``weights``, summed a block of users at a time."""
    g = torch.zeros(n_items, n_items, device=weights.device)
    order = torch.argsort(data.user_idx, stable=True)
    users, items, w = data.user_idx[order], data.item_idx[order], weights[order]
    bounds = torch.searchsorted(users, torch.arange(0, data.n_users + USERS_PER_BLOCK, USERS_PER_BLOCK))
    for lo, hi, first in zip(
        bounds[:-1].tolist(), bounds[1:].tolist(), range(0, data.n_users, USERS_PER_BLOCK), strict=False
    ):
        if hi == lo:
            continue
        x = torch.zeros(min(USERS_PER_BLOCK, data.n_users - first), n_items, device=weights.device)
        x[users[lo:hi] - first, items[lo:hi]] = w[lo:hi]
        g.addmm_(x.T, x)
    return g


class _Sweeps(Sweeps):
    """One pass: the closed form."""

    planned = 1

    def __init__(self, model: EASE, config: EASEConfig, data: RankerData) -> None:
        self.model, self.config, self.data = model, config, data

    @torch.no_grad()
    def sweep(self, epoch: int) -> None:
        model, data = self.model, self.data
        model.rating_max.fill_(data.rating_max)
        model.rating_floor.fill_(data.rating_floor)
        weights = model.weights(data.rating)
        genres = data.genres if data.genres is not None and self.config.genres > 0 else None
        rows = few_rows(data, genres, model.n_items)
        if rows is not None:
            model.B = through_rows(rows, weights, data, genres, self.config, model.n_items)
            return
        g = gram(data, weights, model.n_items)
        if genres is not None:
            g.addmm_(genres.T, genres, alpha=self.config.genres)  # in place: no third n_items^2 matrix
        g.diagonal().add_(self.config.l2)
        lower = torch.linalg.cholesky(g)
        del g  # two n_items^2 matrices at a time, never three
        p = torch.cholesky_inverse(lower)
        del lower
        p.div_(-p.diagonal()[None, :])  # B = -P / diag(P), column by column
        p.diagonal().zero_()
        model.B = p


def few_rows(data: RankerData, genres: Tensor | None, n_items: int) -> Tensor | None:
    """The users with ratings (their indices) where they and the genre rows number at most half the items, else None.

    X then has far fewer rows than columns, and the inverse is cheaper through its rows
    (``through_rows``): on ml-latest-small (610 users, 9,724 items) about 1 s against 15 s
    for the Cholesky of the items x items Gram matrix, on 2 cores.
    """
    users = torch.unique(data.user_idx)
    n_rows = len(users) + (0 if genres is None else genres.shape[0])
    return users if 2 * n_rows <= n_items else None


def through_rows(
    users: Tensor, weights: Tensor, data: RankerData, genres: Tensor | None, config: EASEConfig, n_items: int
) -> Tensor:
    """B from the rows of X (the users in ``users``, then any genre rows) by the Woodbury identity.

    With A those rows (r of them), (A^T A + l2 I)^-1 = (I - A^T (A A^T + l2 I)^-1 A) / l2:
    an r x r solve and one n_items x r x n_items product instead of an n_items^3 Cholesky.
    The factor 1 / l2 cancels in B = -P / diag(P). The small solve runs in float64, the
    large product in float32, as the Cholesky did.
    """
    a = torch.zeros(len(users) + (0 if genres is None else genres.shape[0]), n_items, device=weights.device)
    a[torch.searchsorted(users, data.user_idx), data.item_idx] = weights
    if genres is not None:
        a[len(users) :] = genres * math.sqrt(config.genres)
    k = (a @ a.T).double()
    k.diagonal().add_(config.l2)
    m = torch.linalg.solve(k, a.double()).float()  # (A A^T + l2 I)^-1 A
    del k
    p = torch.mm(a.T, m).neg_()  # l2 P = I - A^T (A A^T + l2 I)^-1 A
    p.diagonal().add_(1.0)
    p.div_(-p.diagonal()[None, :])
    p.diagonal().zero_()
    return p


def _build(config: EASEConfig, n_users: int, n_items: int, generator: torch.Generator) -> EASE:
    return EASE(n_items, config)


def _candidates(n_users: int, n_items: int, n_ratings: int) -> list[EASEConfig]:
    """Ridges for ``train`` to compare: the default, and heavier ones for denser logs (bench/NOTES.md).

    Each costs one fit (5 s at 10,000 items on 2 cores): catalogues past 12,000 items get one.
    """
    if n_items > 12_000:
        return [EASEConfig()]
    return [EASEConfig(l2=l2) for l2 in (100.0, 400.0, 1600.0)]  # the default first: it stands unless beaten


def _space(trial) -> tuple[dict, dict]:  # noqa: ANN001
    """What ``movierec tune`` searches: a trial -> (config fields, training settings)."""
    return {
        "l2": trial.suggest_float("l2", 5.0, 5000.0, log=True),
        "weighting": trial.suggest_categorical("weighting", ["rating", "binary"]),
        "genres": trial.suggest_float("genres", 0.0, 100.0),
    }, {}


def _too_large(n_users: int, n_items: int) -> str | None:
    if fits(n_users, n_items):
        return None
    return (
        f"{n_items:,} items x {n_users:,} users is too large for EASE's dense item-item matrix "
        f"(up to {MAX_ITEMS:,} items and {MAX_GRAM_FLOPS:.0e} multiply-adds)"
    )


def _as_fitted(config: EASEConfig, data: RankerData) -> EASEConfig:
    # A log without genres fits none, whatever the weight: reports and the manifest say 0.
    return replace(config, genres=0.0) if data.genres is None and config.genres else config


SPEC = ranker_spec(
    name="ease",
    summary="EASE (Steck 2019): closed-form item-item model of which items a user rated, and how well",
    config_type=EASEConfig,
    build=_build,
    sweeps=_Sweeps,
    space=_space,
    candidates=_candidates,
    too_large=_too_large,
    as_fitted=_as_fitted,
    saved_before={"genres": 0.0},  # models saved before genres existed fitted without them
)
