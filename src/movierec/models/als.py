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

With ``link="clip"`` the prediction is that latent seen through the ends of the rating
scale: ``E[clip(z + e, lo, hi)]``, ``e ~ N(0, link_sd^2)``, a smooth clip that stays
inside the scale. Where much of the taste lies past the scale's ends (a strong signal on
a 0.5-5 scale) a linear fit bends its factors to chase ratings that cannot go higher; the
link lets them saturate (bench/NOTES.md). Each half-sweep is then one Gauss-Newton step
per row, the same batched solves, on the ratings' slopes and residuals.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from movierec.errors import ConfigError
from movierec.models.base import ModelSpec, RaterData, RatingModel, Sweeps
from movierec.models.mf import MF, ridge_fold_in
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
    link: str = "linear"
    """``linear``: predict the latent ``b_u + b_i + p_u . q_i``; ``clip``: the latent through
    the rating scale's smooth ends (the module's docstring), fitted by Gauss-Newton."""
    link_sd: float = 0.8
    """Width of the ``clip`` link's smoothing, in stars: the spread of a rating about its latent."""

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ConfigError(f"dim must be at least 1, got {self.dim}")
        if self.reg <= 0 or self.reg_bias <= 0 or self.init_std < 0:
            raise ConfigError("reg and reg_bias must be > 0 (they keep every solve well posed), init_std >= 0")
        if self.start not in ("svd", "random"):
            raise ConfigError(f"start must be 'svd' or 'random', got {self.start!r}")
        if self.link not in ("linear", "clip"):
            raise ConfigError(f"link must be 'linear' or 'clip', got {self.link!r}")
        if not self.link_sd > 0:
            raise ConfigError(f"link_sd must be > 0, got {self.link_sd}")


def clip_link(z: Tensor, lo: float | Tensor, hi: float | Tensor, sd: float) -> tuple[Tensor, Tensor]:
    """``E[clip(z + e, lo, hi)]`` for ``e ~ N(0, sd^2)``, and its slope in ``z``.

    ``E[clip(Y)] = lo + integral_lo^hi P(Y > t) dt = lo + sd (psi(a) - psi(b))`` with
    ``a = (z - lo) / sd``, ``b = (z - hi) / sd`` and ``psi(x) = x Phi(x) + phi(x)``, the
    integral of the normal CDF; its slope is ``Phi(a) - Phi(b)``, in (0, 1).
    """
    a, b = (z - lo) / sd, (z - hi) / sd
    cdf_a, cdf_b = torch.special.ndtr(a), torch.special.ndtr(b)
    pdf = 1.0 / math.sqrt(2 * math.pi)
    psi_a = a * cdf_a + pdf * torch.exp(-0.5 * a * a)
    psi_b = b * cdf_b + pdf * torch.exp(-0.5 * b * b)
    # In (lo, hi) exactly; the clamp only undoes float rounding far past the ends.
    ends = torch.as_tensor(lo, dtype=z.dtype, device=z.device), torch.as_tensor(hi, dtype=z.dtype, device=z.device)
    return torch.clamp(lo + sd * (psi_a - psi_b), *ends), cdf_a - cdf_b


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


def _step(
    side: RowBlocks,
    factors: Tensor,
    bias: Tensor,
    other: Tensor,
    other_bias: Tensor,
    penalty: Tensor,
    prior: float,
    link: Callable[[Tensor], tuple[Tensor, Tensor]],
) -> float:
    """One Gauss-Newton step for every row of ``side`` under ``link``; returns the rows'
    penalised SSE before the step (the objective of the state it started from).

    For a row ``w = [p, b]`` with ratings ``r = g(X w + o)``, slopes ``s`` and residuals
    ``e``: ``(X^T S^2 X + L) dw = X^T S e - L w``, ``L`` the ridge ``(n + prior) * penalty``.
    With the identity link it is ``_solve``'s exact solution.
    """
    k = factors.shape[1]
    objective = 0.0
    count = side.count.float() + prior
    for rows, x, offset, target in side.linearised(other, other_bias):
        w = torch.cat([factors[rows], bias[rows, None]], 1)
        real = x[..., k]  # the constant column: 1 on ratings, 0 on padding
        g, slope = link(torch.bmm(x, w[:, :, None])[..., 0] + offset)
        resid, slope = (target - g) * real, slope * real
        lam = count[rows, None] * penalty
        objective += float((resid * resid).double().sum() + (lam * w * w).double().sum())
        xs = x * slope[..., None]
        a = torch.bmm(xs.transpose(1, 2), xs)
        a.diagonal(dim1=1, dim2=2).add_(lam)
        rhs = torch.bmm(xs.transpose(1, 2), resid[..., None])[..., 0] - lam * w
        w = w + torch.linalg.solve(a, rhs)
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


FOLD_IN_STEPS = 20
"""At most this many Gauss-Newton steps of a new user's fit under the ``clip`` link."""
FOLD_IN_TOL = 1e-9
"""A step this small (relative to the largest weight, plus one) ends that fit: it has settled."""


class ALS(MF):
    """``mf``'s structure, filled by alternating least squares; with the ``clip`` link, seen through it."""

    bounds: Tensor
    """(2,) the centred rating scale's ends, for the ``clip`` link only (so older models load as they were)."""

    def __init__(self, n_users: int, n_items: int, config: ALSConfig, generator: torch.Generator) -> None:
        super().__init__(n_users, n_items, config.dim, generator, init_std=0.0)
        self.reg, self.reg_bias = config.reg, config.reg_bias  # fold-in uses the same ridge
        self.prior = config.prior_ratings
        self.link_sd = config.link_sd if config.link == "clip" else 0.0
        if self.link_sd:
            self.register_buffer("bounds", torch.zeros(2))

    def through_link(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """The prediction and its slope for latents ``z``: ``(z, 1)`` with the linear link."""
        if not self.link_sd:
            return z, torch.ones_like(z)
        return clip_link(z, self.bounds[0], self.bounds[1], self.link_sd)

    def _seen(self, z: Tensor) -> Tensor:
        """The prediction for latents ``z``: no work (and no slopes) with the linear link."""
        return self.through_link(z)[0] if self.link_sd else z

    def forward(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        return self._seen(super().forward(user_idx, item_idx))

    def score(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        return self._seen(super().score(user_idx, item_idx))

    def fold_in(self, item_idx: Tensor, target: Tensor) -> Callable[[Tensor], Tensor]:
        """The training objective for one user (its prior included), with the item side frozen:
        one ridge solve with the linear link, Gauss-Newton steps from zero with ``clip``."""
        q = self.item_factors.weight.detach()
        b_i = self.item_bias.weight.detach()[:, 0]
        n = len(item_idx) + self.prior
        if not self.link_sd:
            return ridge_fold_in(q, b_i, item_idx, target, lam=self.reg * n, lam_bias=self.reg_bias * n)
        x = torch.cat([q[item_idx], torch.ones(len(item_idx), 1, device=q.device)], 1).double()
        offset, y = b_i[item_idx].double(), target.double()
        lam = torch.full((x.shape[1],), self.reg * n, dtype=x.dtype, device=x.device)
        lam[-1] = self.reg_bias * n
        w = torch.zeros_like(lam)
        for _ in range(FOLD_IN_STEPS):
            g, slope = self.through_link(x @ w + offset)
            xs = x * slope[:, None]
            step = torch.linalg.solve(xs.T @ xs + torch.diag(lam), xs.T @ (y - g) - lam * w)
            w = w + step
            # Most fits settle in a few steps; running all of them cost a served request 1.7 ms.
            if float(step.abs().max()) <= FOLD_IN_TOL * (1.0 + float(w.abs().max())):
                break
        p, b = w[:-1].to(q.dtype), float(w[-1])

        def scorer(items: Tensor) -> Tensor:
            return self._seen(q[items] @ p + b_i[items] + b)

        return scorer


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
        self.link = model.through_link
        if model.link_sd:
            if data.bounds is None:
                raise ConfigError("the clip link needs the rating scale's ends (RaterData.bounds)")
            model.bounds.copy_(torch.tensor(data.bounds))

    @torch.no_grad()
    def sweep(self, epoch: int) -> float:
        config, p, b_u, prior = self.config, self.p, self.b_u, self.config.prior_ratings
        if config.link == "linear":
            _solve(self.users, p, b_u, self.q, self.b_i, self.penalty, prior)
            objective = _solve(self.items, self.q, self.b_i, p, b_u, self.penalty, prior)
        else:  # the objective of the state between the half-sweeps: the users stepped, the items not yet
            _step(self.users, p, b_u, self.q, self.b_i, self.penalty, prior, self.link)
            objective = _step(self.items, self.q, self.b_i, p, b_u, self.penalty, prior, self.link)
        # The items' solve counted their own penalty; add the users' (n_u + prior times).
        count = self.users.count
        ridge = (count + prior) * (config.reg * (p * p).sum(1) + config.reg_bias * b_u * b_u)
        objective += float((ridge * (count > 0)).sum())
        return objective / max(self.n, 1)


def _build(config: ALSConfig, n_users: int, n_items: int, generator: torch.Generator) -> ALS:
    return ALS(n_users, n_items, config, generator)


SMALL_CLIP = ALSConfig(dim=8, reg=0.001, reg_bias=0.001, prior_ratings=1000.0, link="clip")
"""The small clip-link setting: one of ``train``'s candidates, and ``blend``'s als member."""


def _candidates(n_users: int, n_items: int, n_ratings: int) -> list[ALSConfig]:
    """The defaults, a light ridge and two ``clip``-link fits, for ``train`` to compare on the validation part.

    No one setting serves every log: on ml-latest-small reg 0.1 validates at 0.809 and 0.03
    at 0.873; on a 20M-rating synthetic log with a strong signal 0.1 stops at 0.858 and
    0.03 reaches 0.797, and there a small ``clip``-link model with a ridge of about one
    rating's worth whatever the row's count (reg 0.001, prior 1000: a Gaussian prior on
    the factors) reaches 0.68 (bench/NOTES.md). Comparing costs a fit each; a candidate
    that overfits stops after a few sweeps.
    """
    return [
        ALSConfig(),
        ALSConfig(reg=0.03, reg_bias=0.03, prior_ratings=10.0),
        SMALL_CLIP,
        replace(SMALL_CLIP, dim=16, reg=0.003, reg_bias=0.003),
    ]


def _space(trial) -> tuple[dict, dict]:  # noqa: ANN001
    """What ``movierec tune`` searches: a trial -> (config fields, training settings)."""
    model = {
        "dim": trial.suggest_int("dim", 8, 128, log=True),
        "reg": trial.suggest_float("reg", 0.0005, 1.0, log=True),
        "reg_bias": trial.suggest_float("reg_bias", 0.0005, 1.0, log=True),
        "prior_ratings": trial.suggest_float("prior_ratings", 1.0, 1000.0, log=True),
        "link": trial.suggest_categorical("link", ["linear", "clip"]),
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
