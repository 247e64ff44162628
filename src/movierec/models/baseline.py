"""Global mean plus regularised user and item biases: the floor every model is seen next to.

Fitted by alternating least squares, as Surprise's ``BaselineOnly`` does:
``b_i = sum(r - mu - b_u) / (reg_item + n_i)``, then ``b_u = sum(r - mu - b_i) / (reg_user + n_u)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from movierec.errors import ConfigError
from movierec.models.base import ModelSpec, RaterData, RatingModel, Sweeps


@dataclass(frozen=True)
class BaselineConfig:
    """Regularisation of the bias model."""

    reg_user: float = 15.0
    """Shrinks a user's bias toward 0; a user with this many ratings is pulled half way."""
    reg_item: float = 10.0
    """Shrinks an item's bias toward 0, as ``reg_user`` does for users."""
    sweeps: int = 10
    """Alternating least-squares sweeps (each solves items, then users, exactly)."""

    def __post_init__(self) -> None:
        # not x >= 0 also refuses NaN; a negative ridge can divide by zero (a fold-in of n = -reg_user ratings)
        if not (self.reg_user >= 0 and self.reg_item >= 0) or self.sweeps < 1:
            raise ConfigError("reg_user and reg_item must be >= 0 and sweeps at least 1")


def fit_biases(
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    centred: np.ndarray,
    n_users: int,
    n_items: int,
    config: BaselineConfig = BaselineConfig(),
) -> tuple[np.ndarray, np.ndarray]:
    """Regularised user and item biases of centred ratings, by ALS; float32 arrays."""
    n_u = np.bincount(user_idx, minlength=n_users)
    n_i = np.bincount(item_idx, minlength=n_items)
    b_u = np.zeros(n_users)
    b_i = np.zeros(n_items)
    for _ in range(config.sweeps):
        b_i = np.bincount(item_idx, centred - b_u[user_idx], minlength=n_items) / (config.reg_item + n_i)
        b_u = np.bincount(user_idx, centred - b_i[item_idx], minlength=n_users) / (config.reg_user + n_u)
    return b_u.astype(np.float32), b_i.astype(np.float32)


def shrunk_bias(residuals: np.ndarray | Tensor, reg: float) -> float:
    """One user's bias from their residuals: ``fit_biases``'s user step, sum / (reg + n), for a user folded in."""
    return float(residuals.sum()) / (reg + len(residuals))


class Baseline(RatingModel):
    """Prediction = b_u + b_i (centred)."""

    def __init__(self, n_users: int, n_items: int, reg_user: float = BaselineConfig.reg_user) -> None:
        super().__init__()
        self.n_users, self.n_items, self.reg_user = n_users, n_items, reg_user
        self.user_bias = nn.Parameter(torch.zeros(n_users))
        self.item_bias = nn.Parameter(torch.zeros(n_items))

    def forward(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        return self.user_bias[user_idx] + self.item_bias[item_idx]

    def score(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        return self.user_bias[user_idx, None] + self.item_bias[None, item_idx]

    def fold_in(self, item_idx: Tensor, target: Tensor) -> Callable[[Tensor], Tensor]:
        """A new user's bias, by the same shrunk mean training solves for a user given the item biases."""
        item_bias = self.item_bias.detach()
        b_u = shrunk_bias(target - item_bias[item_idx], self.reg_user)
        return lambda items: b_u + item_bias[items]


def _build(config: BaselineConfig, n_users: int, n_items: int, generator: torch.Generator) -> Baseline:
    return Baseline(n_users, n_items, config.reg_user)


class _Sweeps(Sweeps):
    """One pass: the biases by their own few least-squares sweeps (``BaselineConfig.sweeps``)."""

    planned = 1

    def __init__(self, model: RatingModel, config: BaselineConfig, data: RaterData) -> None:
        assert isinstance(model, Baseline)  # the registry pairs these sweeps with this build
        self.model, self.config, self.data = model, config, data

    def sweep(self, epoch: int) -> float:
        u, i = self.data.user_idx.cpu().numpy(), self.data.item_idx.cpu().numpy()
        y = self.data.target.cpu().numpy().astype(np.float64)
        b_u, b_i = fit_biases(u, i, y, self.model.n_users, self.model.n_items, self.config)
        with torch.no_grad():
            self.model.user_bias.copy_(torch.from_numpy(b_u))
            self.model.item_bias.copy_(torch.from_numpy(b_i))
        return float(np.mean((y - b_u[u] - b_i[i]) ** 2))


def _space(trial) -> tuple[dict, dict]:  # noqa: ANN001
    """What ``movierec tune`` searches: a trial -> (config fields, training settings)."""
    model = {
        "reg_user": trial.suggest_float("reg_user", 0.5, 50.0, log=True),
        "reg_item": trial.suggest_float("reg_item", 0.5, 50.0, log=True),
    }
    return model, {}


SPEC = ModelSpec(
    name="baseline",
    summary="global mean + regularised user and item biases (ALS); the floor to beat",
    config_type=BaselineConfig,
    build=_build,
    training={"epochs": 1},
    sweeps=_Sweeps,
    space=_space,
    one_pass=True,
)
