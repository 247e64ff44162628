"""Biased matrix factorisation by alternating least squares: ``mf``'s model, solved exactly.

The model and objective are ``mf``'s: ``b_u + b_i + p_u . q_i`` and squared error plus
``reg |p|^2 + reg_bias b^2`` per rating. With the item side fixed that objective splits
into one ridge regression per user, on the items they rated, with penalty ``reg * n_u``
(Zhou et al. 2008's weighted-lambda ALS); then the same for items. Every half-sweep
lowers the objective, needs no learning rate, and about ten sweeps converge.

Speed (bench/NOTES.md): a user's normal equations are ``X^T X`` over the rows
``[q_j, 1, r_uj - b_j]`` of the items they rated; the last column makes the right-hand
side and the residual sum of squares come out of the same product. Users are grouped by
rating count into blocks of about 32k ratings, each padded to its longest user with an
all-zero row, so a block is one gather that stays in cache, one batched product and one
batched solve.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from movierec.errors import ConfigError
from movierec.models.base import FitContext, ModelSpec, RatingModel
from movierec.models.mf import MF
from movierec.training import stalled

BLOCK_RATINGS = 1 << 15
"""Padded ratings per block: the gathered rows (4 MB at dim 32) stay in cache for the product."""


@dataclass(frozen=True)
class ALSConfig:
    """Size and regularisation; the sweep count is the training ``epochs``."""

    dim: int = 32
    """Length of each user and item factor vector."""
    reg: float = 0.15
    """Weight of the squared factor norms of each rating's user and item, per rating."""
    reg_bias: float = 0.2
    """Weight of the squared biases of each rating's user and item, per rating."""
    init_std: float = 0.1
    """Standard deviation of the item factors' random start (users are solved first)."""

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ConfigError(f"dim must be at least 1, got {self.dim}")
        if self.reg <= 0 or self.reg_bias <= 0 or self.init_std < 0:
            raise ConfigError("reg and reg_bias must be > 0 (they keep every solve well posed), init_std >= 0")


class _Side:
    """One side's ratings (say users), grouped into padded blocks of rows with similar counts."""

    def __init__(self, own: Tensor, other: Tensor, target: Tensor, n_own: int, n_other: int) -> None:
        self.n_own, self.n_other = n_own, n_other
        device = own.device
        self.count = torch.bincount(own, minlength=n_own)
        order = torch.argsort(own, stable=True)
        start = torch.cumsum(self.count, 0) - self.count
        # Padding points at one extra rating: the other side's all-zero row, target 0.
        other_ext = torch.cat([other[order], other.new_full((1,), n_other)])
        target_ext = torch.cat([target[order].float(), target.new_zeros(1, dtype=torch.float32)])
        rows = torch.argsort(self.count, stable=True)
        rows = rows[self.count[rows] > 0]
        counts = self.count[rows].cpu()
        self.blocks: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []
        s = 0
        while s < len(rows):
            # Rows of similar counts, so little is padding: up to 1.25x the first count (+8).
            end = int(torch.searchsorted(counts, int(counts[s]) * 1.25 + 8, right=True))
            longest = int(counts[end - 1])
            end = min(end, s + max(1, BLOCK_RATINGS // longest))
            longest = int(counts[end - 1])
            block = rows[s:end]
            offset = torch.arange(longest, device=device)
            n = self.count[block][:, None]
            pos = torch.where(offset < n, start[block][:, None] + offset, len(order))
            self.blocks.append((block, other_ext[pos], target_ext[pos], n[:, 0].float()))
            s = end

    def solve(self, factors: Tensor, bias: Tensor, other_factors: Tensor, other_bias: Tensor, penalty: Tensor) -> float:
        """Set every row's factors and bias to its ridge solution; returns the rows' penalised SSE.

        ``penalty`` (dim + 1,) is the per-rating ridge of the factors and the bias.
        """
        k = factors.shape[1]
        table = other_factors.new_zeros(self.n_other + 1, k + 2)
        table[:-1, :k] = other_factors
        table[:-1, k] = 1.0
        table[:-1, k + 1] = -other_bias
        objective = torch.zeros((), dtype=torch.float64, device=factors.device)
        for block, other, target, count in self.blocks:
            x = table.index_select(0, other.view(-1)).view(*other.shape, k + 2)
            x[..., k + 1] += target  # [q_j, 1, r_uj - b_j]
            gram = torch.bmm(x.transpose(1, 2), x)
            a, b = gram[:, : k + 1, : k + 1], gram[:, : k + 1, k + 1]
            a.diagonal(dim1=1, dim2=2).add_(count[:, None] * penalty)
            w = torch.linalg.solve(a, b)
            # |y - X w|^2 + pen |w|^2 = y.y - 2 w.b + w.A.w, and A w = b at the solution.
            objective += (gram[:, k + 1, k + 1] - (w * b).sum(1)).sum().double()
            factors[block] = w[:, :k]
            bias[block] = w[:, k]
        return float(objective)


class ALS(MF):
    """``mf``'s structure and fold-in; filled by alternating least squares instead of gradient steps."""


def _fit(model: RatingModel, config: ALSConfig, ctx: FitContext) -> list[dict]:
    assert isinstance(model, ALS)  # the registry pairs this fit with this build
    users = _Side(ctx.user_idx, ctx.item_idx, ctx.target, model.n_users, model.n_items)
    items = _Side(ctx.item_idx, ctx.user_idx, ctx.target, model.n_items, model.n_users)
    p, q = model.user_factors.weight.data, model.item_factors.weight.data
    b_u, b_i = model.user_bias.weight.data[:, 0], model.item_bias.weight.data[:, 0]
    penalty = torch.full((config.dim + 1,), config.reg, device=p.device)
    penalty[-1] = config.reg_bias
    with torch.no_grad():
        # Rows without training ratings stay at zero: the bias-only prediction.
        q.normal_(0.0, config.init_std, generator=ctx.generator)
        q[items.count == 0] = 0.0
    history: list[dict] = []
    best_rmse, best_state = math.inf, None
    for sweep in range(ctx.epochs):
        started = time.perf_counter()
        with torch.no_grad():
            users.solve(p, b_u, q, b_i, penalty)
            objective = items.solve(q, b_i, p, b_u, penalty)
            # The items' solve counted their own penalty; add the users' (per rating: n_u times).
            objective += float((users.count * (config.reg * (p * p).sum(1) + config.reg_bias * b_u * b_u)).sum())
        val_rmse = ctx.validate()
        row = {
            "epoch": sweep + 1,
            "train_loss": objective / max(len(ctx.target), 1),
            "val_rmse": val_rmse,
            "seconds": time.perf_counter() - started,
        }
        history.append(row)
        if ctx.report:
            ctx.report(row)
        if val_rmse is not None and val_rmse < best_rmse:
            best_rmse = val_rmse
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif ctx.patience is not None and stalled(history, ctx.patience):
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def _build(config: ALSConfig, n_users: int, n_items: int, generator: torch.Generator) -> ALS:
    model = ALS(n_users, n_items, config.dim, generator, init_std=0.0)
    model.reg, model.reg_bias = config.reg, config.reg_bias  # fold-in uses the same ridge
    return model


SPEC = ModelSpec(
    name="als",
    summary="biased matrix factorisation (mf's objective) by alternating least squares: no learning rate",
    config_type=ALSConfig,
    build=_build,
    training={"epochs": 25, "patience": 2},
    fit=_fit,
)
