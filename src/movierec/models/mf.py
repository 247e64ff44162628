"""Biased matrix factorisation: the reference factor model, trained by the one loop.

Prediction (centred on the training mean): ``b_u + b_i + p_u . q_i``. The regulariser
is applied per rating, as in the classic SGD formulation (Funk; Koren, Bell, Volinsky
2009): a batch adds ``reg * mean(|p_u|^2 + |q_i|^2) + reg_bias * mean(b_u^2 + b_i^2)``,
so a user with many ratings is shrunk in proportion to the evidence, and the same
``reg`` suits 100K and 20M ratings alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from movierec.errors import ConfigError
from movierec.models.base import ModelSpec, RatingModel
from movierec.models.space import Floats, Ints, OneOf, Space


@dataclass(frozen=True)
class MFConfig:
    """Size and regularisation of the factorisation."""

    dim: int = 64
    """Length of each user and item factor vector."""
    reg: float = 0.2
    """Weight of the squared factor norms of each rating's user and item, per rating."""
    reg_bias: float = 0.005
    """Weight of the squared biases of each rating's user and item, per rating."""
    init_std: float = 0.01
    """Standard deviation of the Gaussian the factors start from (biases start at 0)."""

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ConfigError(f"dim must be at least 1, got {self.dim}")
        if self.reg < 0 or self.reg_bias < 0 or self.init_std < 0:
            raise ConfigError("reg, reg_bias and init_std must be >= 0")


class MF(RatingModel):
    """``b_u + b_i + p_u . q_i`` over embedding tables; also the stored form of ``bmf``."""

    def __init__(self, n_users: int, n_items: int, dim: int, generator: torch.Generator, init_std: float = 0.0) -> None:
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        # Sparse gradients: a batch touches few rows, so only those rows are updated.
        self.user_factors = nn.Embedding(n_users, dim, sparse=True)
        self.item_factors = nn.Embedding(n_items, dim, sparse=True)
        self.user_bias = nn.Embedding(n_users, 1, sparse=True)
        self.item_bias = nn.Embedding(n_items, 1, sparse=True)
        with torch.no_grad():
            for table in (self.user_factors, self.item_factors):
                table.weight.normal_(0.0, init_std, generator=generator)
            self.user_bias.weight.zero_()
            self.item_bias.weight.zero_()
        self.reg, self.reg_bias = 0.0, 0.0

    def forward(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        p, q = self.user_factors(user_idx), self.item_factors(item_idx)
        return (p * q).sum(1) + self.user_bias(user_idx)[:, 0] + self.item_bias(item_idx)[:, 0]

    def penalty(self, user_idx: Tensor, item_idx: Tensor) -> Tensor | float:
        if not (self.reg or self.reg_bias):
            return 0.0
        p, q = self.user_factors(user_idx), self.item_factors(item_idx)
        b = self.user_bias(user_idx)[:, 0] ** 2 + self.item_bias(item_idx)[:, 0] ** 2
        return self.reg * ((p * p).sum(1) + (q * q).sum(1)).mean() + self.reg_bias * b.mean()

    def score(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        # index_select, not fancy indexing: py-spy put most of a served top-10 in this gather.
        p = self.user_factors.weight.index_select(0, user_idx)
        q = self.item_factors.weight.index_select(0, item_idx)
        b_u = self.user_bias.weight.index_select(0, user_idx)
        b_i = self.item_bias.weight[:, 0].index_select(0, item_idx)
        return p @ q.T + b_u + b_i[None, :]

    def item_vectors(self) -> Tensor:
        return self.item_factors.weight.detach()

    def fold_in(self, item_idx: Tensor, target: Tensor) -> Callable[[Tensor], Tensor]:
        """Ridge regression of the new user's centred ratings on the frozen item side.

        The same objective training minimises for one user, in closed form:
        ``sum_n (r_n - b_i - b - q_i . p)^2 + n (reg |p|^2 + reg_bias b^2)``.
        """
        n = len(item_idx)
        return ridge_fold_in(
            self.item_factors.weight.detach(),
            self.item_bias.weight.detach()[:, 0],
            item_idx,
            target,
            lam=max(self.reg, 1e-3) * n,
            lam_bias=max(self.reg_bias, 1e-3) * n,
        )


def ridge_fold_in(
    item_factors: Tensor, item_bias: Tensor, item_idx: Tensor, target: Tensor, lam: float, lam_bias: float
) -> Callable[[Tensor], Tensor]:
    """A scorer for a new user: ridge regression of ``target`` on fixed item factors and biases.

    Solves ``min |target - b_i - b - Q p|^2 + lam |p|^2 + lam_bias b^2`` for the user's
    vector ``p`` and bias ``b``; returns ``items -> q_i . p + b_i + b``.
    """
    q = item_factors[item_idx].double()
    y = target.double() - item_bias[item_idx].double()
    x = torch.cat([q, torch.ones(len(q), 1, dtype=q.dtype, device=q.device)], 1)
    penalty = torch.full((x.shape[1],), float(lam), dtype=q.dtype, device=q.device)
    penalty[-1] = lam_bias
    w = torch.linalg.solve(x.T @ x + torch.diag(penalty), x.T @ y)
    p, b = w[:-1].to(item_factors.dtype), float(w[-1])

    def scorer(items: Tensor) -> Tensor:
        return item_factors[items] @ p + item_bias[items] + b

    return scorer


def _build(config: MFConfig, n_users: int, n_items: int, generator: torch.Generator) -> MF:
    model = MF(n_users, n_items, config.dim, generator, config.init_std)
    model.reg, model.reg_bias = config.reg, config.reg_bias
    return model


_SPACE = Space(
    model={"dim": Ints(16, 256, log=True), "reg": Floats(1e-3, 1.0, log=True), "reg_bias": Floats(1e-4, 0.1, log=True)},
    train={"lr": Floats(1e-3, 3e-2, log=True), "batch_size": OneOf((1024, 4096, 16384))},
)
"""What ``movierec tune`` searches."""


SPEC = ModelSpec(
    name="mf",
    summary="biased matrix factorisation b_u + b_i + p_u.q_i, per-rating L2, lazy Adam, early stopping",
    config_type=MFConfig,
    build=_build,
    training={"epochs": 60, "batch_size": 4096, "optimizer": "adam", "lr": 0.005, "patience": 3},
    space=_SPACE,
)
