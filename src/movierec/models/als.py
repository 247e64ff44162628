"""Biased matrix factorisation by alternating least squares: ``mf``'s model, solved exactly.

The model is ``mf``'s, ``b_u + b_i + p_u . q_i``, and so is the objective: squared error
plus ``reg |p|^2 + reg_bias b^2`` per rating, plus the same for ``prior_ratings`` more
ratings of every row that has any. With the item side fixed it splits into one ridge
regression per user, on the items they rated, with penalty ``reg * (n_u + prior)``
(Zhou et al. 2008's weighted-lambda ALS, with a prior); then the same for items. Every half-sweep
lowers the objective and needs no learning rate; from the singular start (``start``) 5 to
25 sweeps converge.

The normal equations of every user come a block of users at a time from
``movierec.models.rows``: one gather, one batched product and one batched solve.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from movierec.errors import ConfigError
from movierec.models.base import ModelSpec, RaterData, RatingModel, Sweeps
from movierec.models.mf import MF
from movierec.models.rows import RowBlocks


@dataclass(frozen=True)
class ALSConfig:
    """Size and regularisation; the sweep count is the training ``epochs``."""

    dim: int = 32
    """Length of each user and item factor vector."""
    reg: float = 0.1
    """Weight of the squared factor norms of each rating's user and item, per rating."""
    reg_bias: float = 0.1
    """Weight of the squared biases of each rating's user and item, per rating."""
    init_std: float = 0.1
    """Standard deviation of the item factors' random start (``start="random"``)."""
    start: str = "svd"
    """``svd``: the item factors start along the top right singular vectors of the centred
    ratings; ``random``: Gaussian. From a random start a light ridge first overfits noise
    and a heavy one creeps away from zero for 10-25 sweeps (bench/NOTES.md); the
    singular vectors put every sweep on the way down, and 5-6 sweeps converge."""
    prior_ratings: float = 25.0
    """Ratings' worth of ridge every row starts with, so rows with few ratings stay near zero.

    Without it, 92% of the top-10 items on ml-latest-small had under 5 ratings (one 5-star
    rating makes a big bias); with 25, 5%, and validation RMSE improved (0.823 -> 0.809)."""

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ConfigError(f"dim must be at least 1, got {self.dim}")
        if self.reg <= 0 or self.reg_bias <= 0 or self.init_std < 0:
            raise ConfigError("reg and reg_bias must be > 0 (they keep every solve well posed), init_std >= 0")
        if self.start not in ("svd", "random"):
            raise ConfigError(f"start must be 'svd' or 'random', got {self.start!r}")


def _solve(
    side: RowBlocks, factors: Tensor, bias: Tensor, other: Tensor, other_bias: Tensor, penalty: Tensor, prior: float
) -> float:
    """Set every row of ``side`` to its ridge solution; returns those rows' penalised SSE.

    ``penalty`` (dim + 1,) is the per-rating ridge of the factors and of the bias.
    """
    k = factors.shape[1]
    objective = 0.0
    count = side.count.float() + prior
    for rows, a, b, yy in side.equations(other, other_bias):
        a.diagonal(dim1=1, dim2=2).add_(count[rows, None] * penalty)
        w = torch.linalg.solve(a, b)
        # |y - X w|^2 + pen |w|^2 = y.y - 2 w.b + w.A.w, and A w = b at the solution.
        objective += float((yy - (w * b).sum(1)).double().sum())
        factors[rows] = w[:, :k]
        bias[rows] = w[:, k]
    return objective


SVD_START_RMS = 0.3
"""Root mean square of the singular start's entries (the unit singular vectors' are
1 / sqrt(n_items)), so the first users' solve sees factors of a rating's size, not all ridge."""


def _singular_start(data: RaterData, n_users: int, n_items: int, dim: int) -> Tensor:
    """(n_items, dim): the top right singular vectors of the centred ratings, entries of mean square 1.

    A randomized SVD (Halko et al. 2011) of the sparse matrix: a few sparse products,
    about a sweep's time. Its random probe comes from the run's generator, so the same
    seed gives the same start.
    """
    with warnings.catch_warnings():
        # torch calls its sparse support "beta"; these products are long-standing.
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        x = torch.sparse_coo_tensor(torch.stack([data.user_idx, data.item_idx]), data.target, (n_users, n_items))
    seed = int(torch.randint(0, 2**62, (1,), generator=data.generator))
    with torch.random.fork_rng(devices=[data.user_idx.device] if data.user_idx.is_cuda else []):
        torch.manual_seed(seed)
        _, _, v = torch.svd_lowrank(x.coalesce(), q=min(dim, n_users, n_items), niter=2)
    start = torch.zeros(n_items, dim, device=v.device)
    start[:, : v.shape[1]] = v * n_items**0.5
    return start


class ALS(MF):
    """``mf``'s structure and fold-in; filled by alternating least squares instead of gradient steps."""


class _Sweeps(Sweeps):
    """One sweep solves every user, then every item, exactly."""

    resumable = True  # the factors and biases are the whole state

    def __init__(self, model: RatingModel, config: ALSConfig, data: RaterData) -> None:
        assert isinstance(model, ALS)  # the registry pairs these sweeps with this build
        self.config, self.n = config, len(data.target)
        self.users = RowBlocks(data.user_idx, data.item_idx, data.target, model.n_users, model.n_items)
        self.items = RowBlocks(data.item_idx, data.user_idx, data.target, model.n_items, model.n_users)
        self.p, self.q = model.user_factors.weight.data, model.item_factors.weight.data
        self.b_u, self.b_i = model.user_bias.weight.data[:, 0], model.item_bias.weight.data[:, 0]
        self.penalty = torch.full((config.dim + 1,), config.reg, device=self.p.device)
        self.penalty[-1] = config.reg_bias
        if config.start == "svd":
            self.q.copy_(_singular_start(data, model.n_users, model.n_items, config.dim) * SVD_START_RMS)
        else:
            self.q.normal_(0.0, config.init_std, generator=data.generator)
        # Rows without training ratings stay at zero: the bias-only prediction.
        self.q[self.items.count == 0] = 0.0

    @torch.no_grad()
    def sweep(self, epoch: int) -> float:
        config, p, b_u = self.config, self.p, self.b_u
        _solve(self.users, p, b_u, self.q, self.b_i, self.penalty, config.prior_ratings)
        objective = _solve(self.items, self.q, self.b_i, p, b_u, self.penalty, config.prior_ratings)
        # The items' solve counted their own penalty; add the users' (n_u + prior times).
        count = self.users.count
        ridge = (count + config.prior_ratings) * (config.reg * (p * p).sum(1) + config.reg_bias * b_u * b_u)
        objective += float((ridge * (count > 0)).sum())
        return objective / max(self.n, 1)


def _build(config: ALSConfig, n_users: int, n_items: int, generator: torch.Generator) -> ALS:
    model = ALS(n_users, n_items, config.dim, generator, init_std=0.0)
    model.reg, model.reg_bias = config.reg, config.reg_bias  # fold-in uses the same ridge
    return model


def _candidates(n_users: int, n_items: int, n_ratings: int) -> list[ALSConfig]:
    """The defaults and a light ridge, for ``train`` to compare on the validation part.

    No one ridge serves every log: on ml-latest-small reg 0.1 validates at 0.809 and 0.03
    at 0.873; on a 20M-rating synthetic log with a strong signal 0.1 stops at 0.858 and
    0.03 reaches 0.797 (bench/NOTES.md). Comparing costs a second fit; where the light
    ridge overfits, patience stops it after three sweeps.
    """
    return [ALSConfig(), ALSConfig(reg=0.03, reg_bias=0.03, prior_ratings=10.0)]


def _space(trial) -> tuple[dict, dict]:  # noqa: ANN001
    """What ``movierec tune`` searches: a trial -> (config fields, training settings)."""
    model = {
        "dim": trial.suggest_int("dim", 8, 128, log=True),
        "reg": trial.suggest_float("reg", 0.01, 1.0, log=True),
        "reg_bias": trial.suggest_float("reg_bias", 0.01, 1.0, log=True),
        "prior_ratings": trial.suggest_float("prior_ratings", 1.0, 100.0, log=True),
    }
    return model, {}


SPEC = ModelSpec(
    name="als",
    summary="biased matrix factorisation (mf's objective) by alternating least squares: no learning rate",
    config_type=ALSConfig,
    build=_build,
    training={"epochs": 25, "patience": 2},
    sweeps=_Sweeps,
    space=_space,
    candidates=_candidates,
)
