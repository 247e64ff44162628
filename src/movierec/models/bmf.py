"""Bayesian matrix factorisation by Gibbs sampling, with "flipped" implicit feedback.

The model (centred ratings; Rendle, Zhang, Koren 2019 call the item-side form "flipped"):

    r_ui ~ N(w_u + w_i + U_u . V_i, 1/alpha)
    V_i  ~ N(m_V + |N(i)|^-1/2 sum_{v in N(i)} z_v, diag(1/lam_V))    (N(i): who rated i)
    U_u  ~ N(m_U, diag(1/lam_U))     (or, with ``implicit_user``, plus |N(u)|^-1/2 sum_j y_j)
    z_v, w_u, w_i ~ Gaussian with their own mean and precision; every mean and precision
    has a Normal-Gamma hyperprior (as in libFM's MCMC), so nothing needs hand tuning.

An item with few ratings borrows its vector from the users who rated it, which is where
plain factorisation is weakest. Each sweep samples every parameter from its conditional:
each user's factors and bias jointly (a (dim+1)-variate Gaussian, from the same blocked
normal equations ``als`` solves: ``movierec.models.rows``), then each item's; the implicit
vectors ``z`` through an exact data augmentation that splits each item's offset among its
raters, so they too are sampled all at once. Sampling a row's factors jointly, rather
than one factor at a time as libFM does, mixes faster and is 4x quicker here.

Predictions average the samples after ``burn_in``. The average of the products
``U V^T`` is kept compressed to rank ``dim`` as it accumulates (QR + SVD of the stacked
factors), so the saved model is a plain biased factorisation: cheap to serve, with item
vectors and closed-form fold-in like ``mf``. The chain itself is ``movierec.models.gibbs``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from movierec.errors import ConfigError
from movierec.models.base import ModelSpec, RaterData, RatingModel, Sweeps
from movierec.models.gibbs import PosteriorMean, Sampler
from movierec.models.mf import MF, ridge_fold_in
from movierec.models.space import Ints, OneOf, Space


@dataclass(frozen=True)
class BMFConfig:
    """Shape of the sampled model and of the sampler; the sweep count is the training ``epochs``."""

    dim: int = 32
    """Rank of the sampled factors (and of the saved posterior-mean factorisation)."""
    burn_in: int = 20
    """Sweeps discarded before predictions start being averaged."""
    implicit_item: bool = True
    """Item vectors' prior mean from the users who rated the item (the "flipped" model)."""
    implicit_user: bool = False
    """User vectors' prior mean from the items the user rated (SVD++'s implicit feedback)."""
    inner: int = 1
    """Sampling rounds of the implicit vectors per sweep (they mix more slowly than the rest)."""
    init_std: float = 0.1
    """Standard deviation of the factors' random start."""

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ConfigError(f"dim must be at least 1, got {self.dim}")
        if self.burn_in < 0 or self.inner < 1 or self.init_std < 0:
            raise ConfigError("burn_in must be >= 0, inner >= 1 and init_std >= 0")


class BMF(MF):
    """The posterior-mean factorisation: ``mf``'s structure, plus the fold-in ridge the sampler found."""

    fold_in_ridge: Tensor

    def __init__(self, n_users: int, n_items: int, dim: int, generator: torch.Generator) -> None:
        super().__init__(n_users, n_items, dim, generator, init_std=0.0)
        # Ridge weights for folding a new user in, (factors, bias): prior precision / noise precision.
        self.register_buffer("fold_in_ridge", torch.ones(2))

    def penalty(self, user_idx: Tensor, item_idx: Tensor) -> float:
        return 0.0

    def fold_in(self, item_idx: Tensor, target: Tensor) -> Callable[[Tensor], Tensor]:
        lam, lam_bias = (float(x) for x in self.fold_in_ridge)
        return ridge_fold_in(
            self.item_factors.weight.detach(),
            self.item_bias.weight.detach()[:, 0],
            item_idx,
            target,
            lam=lam,
            lam_bias=lam_bias,
        )


class _Sweeps(Sweeps):
    """One sweep draws one Gibbs sample; the model is the posterior mean of the samples after burn-in."""

    stops_early = False  # the model is the mean of every kept sample, whole only at the end
    validates_itself = True  # each sweep's figure is the running mean's, not the last sample's

    def __init__(self, model: RatingModel, config: BMFConfig, data: RaterData) -> None:
        assert isinstance(model, BMF)  # the registry pairs these sweeps with this build
        self.model, self.config, self.val = model, config, data.val
        self.sampler = Sampler(data, model.n_users, model.n_items, config)
        self.mean = PosteriorMean(model.n_users, model.n_items, config.dim, self.sampler.y.device)
        self.val_sum = None if data.val is None else torch.zeros(len(data.val[0]), dtype=torch.float64)
        self.rmse: float | None = None

    def sweep(self, epoch: int) -> float:
        sampler = self.sampler
        sampler.sweep()
        if epoch >= self.config.burn_in:
            self.mean.add(sampler)
        if self.val is not None and self.val_sum is not None:
            vu, vi, vt = self.val
            pred = sampler.predict(vu, vi).double().cpu()
            if self.mean.count:
                self.val_sum += pred
                pred = self.val_sum / self.mean.count
            self.rmse = float(torch.sqrt(torch.mean((pred - vt.double().cpu()) ** 2)))
        return sampler.sse / len(sampler.y)

    def val_rmse(self) -> float | None:
        return self.rmse

    def finish(self, validate: Callable[[], float | None]) -> float | None:
        sampler, model = self.sampler, self.model
        if not self.mean.count:  # fewer sweeps than the burn-in: the last sample stands alone
            self.mean.add(sampler)
        w_u, w_i, A, B = self.mean.factors()
        u_mean, u_lam = sampler.hyper["U"]
        b_mean, b_lam = sampler.hyper["w_u"]
        with torch.no_grad():
            model.user_bias.weight.copy_(w_u.float()[:, None])
            model.item_bias.weight.copy_(w_i.float()[:, None])
            model.user_factors.weight.copy_(A.float())
            model.item_factors.weight.copy_(B.float())
            model.fold_in_ridge.copy_(torch.tensor([float(np.mean(u_lam)), float(b_lam[0])]) / sampler.alpha)
        # The last row's validation figure is the saved model's own (clipped, as training reports it).
        return validate()


def _build(config: BMFConfig, n_users: int, n_items: int, generator: torch.Generator) -> BMF:
    return BMF(n_users, n_items, config.dim, generator)


_SPACE = Space(
    model={"dim": Ints(8, 96, log=True), "burn_in": Ints(5, 40), "implicit_user": OneOf((False, True))},
    train={"epochs": Ints(40, 160, step=20)},
)
"""What ``movierec tune`` searches."""


SMALL_LOG, SMALL_LOG_SWEEPS = 1_000_000, 150
"""Logs of up to ``SMALL_LOG`` training ratings get ``SMALL_LOG_SWEEPS`` Gibbs samples, not 60."""


def training_by_size(n_train: int) -> dict:
    """More Gibbs samples where they are cheap: on ml-latest-small 150 instead of 60 lowered the
    blend's validation RMSE on every seed (0.7848 / 0.8232 / 0.8432 -> 0.7841 / 0.8197 / 0.8360)
    for 1.5-2x the seconds (bench/NOTES.md); at ML-20M size 60 already take ten minutes."""
    return {"epochs": SMALL_LOG_SWEEPS} if n_train <= SMALL_LOG else {}


SPEC = ModelSpec(
    name="bmf",
    summary="Bayesian factorisation by Gibbs sampling, item vectors informed by their raters (flipped)",
    config_type=BMFConfig,
    build=_build,
    training={"epochs": 60},
    training_by_size=training_by_size,
    sweeps=_Sweeps,
    space=_SPACE,
)
