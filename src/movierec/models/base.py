"""The contract every model keeps, and the record that registers a model by name.

A model is a small ``nn.Module`` that sees only contiguous indices and predicts a
rating *centred on the training mean*; adding the mean back, clipping to the rating
scale and handling unknown ids is the recommender's job, not the model's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn


class RatingModel(nn.Module):
    """Base class: ``forward(user_idx, item_idx)`` -> centred predicted ratings, shape (B,)."""

    n_users: int
    n_items: int

    @property
    def score_cost(self) -> int:
        """Rough multiply-adds to score one (user, item) pair: evaluation sizes its work by it."""
        return 1

    def penalty(self, user_idx: Tensor, item_idx: Tensor) -> Tensor | float:
        """Regulariser added to a batch's mean squared error; none by default."""
        return 0.0

    def score(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        """Centred predictions for every pair of ``user_idx`` (B,) and ``item_idx`` (N,): shape (B, N).

        The default runs ``forward`` on the B*N pairs; factor models override it with a
        matrix product. Callers keep B*N bounded (see ``recommend``).
        """
        b, n = len(user_idx), len(item_idx)
        users = user_idx.repeat_interleave(n)
        items = item_idx.repeat(b)
        return self(users, items).view(b, n)

    def item_vectors(self) -> Tensor | None:
        """Learned item representations (n_items, d) for similar-item search; None if the model has none."""
        return None

    def fold_in(self, item_idx: Tensor, target: Tensor) -> Callable[[Tensor], Tensor] | None:
        """A new user from their centred ratings ``target`` of ``item_idx``, the item side frozen.

        Returns a scorer mapping item indices (N,) to centred predictions (N,) for that
        user, without retraining; None when the model cannot fold users in (the
        recommender then uses its bias-only fallback and says so).
        """
        return None


@torch.no_grad()
def predict_centred(model: RatingModel, users: Tensor, items: Tensor, batch: int = 65536) -> Tensor:
    """The model's centred predictions for index pairs, in batches, in eval mode.

    Batches are taken in user order: a model that works a user at a time (``knn`` builds
    each user's rated row once per call) then sees each user in one or two batches, not
    in every one (at ML-20M size: 330 s down to seconds for the training ratings).
    """
    was_training = model.training
    model.eval()
    order = torch.argsort(users, stable=True)
    out = torch.empty(len(users), device=users.device)
    for s in range(0, len(users), batch):
        rows = order[s : s + batch]
        out[rows] = model(users[rows], items[rows])
    model.train(was_training)
    return out


def stalled(history: list[dict], patience: int) -> bool:
    """True when the last ``patience`` epochs brought no better validation RMSE."""
    scores = [h["val_rmse"] for h in history if h["val_rmse"] is not None]
    if len(scores) <= patience:
        return False
    return min(scores[-patience:]) >= min(scores[:-patience])


@dataclass(frozen=True)
class FitContext:
    """What a model's own fit function (for models not trained by gradient steps) gets."""

    user_idx: Tensor
    """int64 (n,): the fit ratings' users."""
    item_idx: Tensor
    """int64 (n,): the fit ratings' items."""
    target: Tensor
    """float32 (n,): the fit ratings, centred on the training mean."""
    validate: Callable[[], float | None]
    """Returns the current validation RMSE (None without a validation part)."""
    generator: torch.Generator
    """The run's random generator (seeded from the training seed)."""
    epochs: int = 1
    """The training config's ``epochs``: passes (sweeps) an iterative fit makes over the data."""
    patience: int | None = None
    """The training config's ``patience``: a fit may stop after this many sweeps without a better validation RMSE."""
    val: tuple[Tensor, Tensor, Tensor] | None = None
    """The validation part as (user_idx, item_idx, centred target), or None: for fits that
    average or weigh several predictors on held-out ratings (a sampler's running mean, a blend)."""
    report: Callable[[dict], None] | None = None
    """Call with each history row as it is made, so long fits show progress; rows reported
    are not shown again when the fit returns."""


@dataclass(frozen=True)
class ModelSpec:
    """How to make, and by default train, one kind of model."""

    name: str
    """The name users pass as ``--model``."""
    summary: str
    """One line for ``movierec models``."""
    config_type: type
    """Frozen dataclass of the model's hyperparameters (saved in the manifest)."""
    build: Callable[[Any, int, int, torch.Generator], RatingModel]
    """``build(config, n_users, n_items, generator)``: a freshly initialised model."""
    training: dict
    """Defaults for ``TrainConfig`` fields this model wants (epochs, lr, optimizer, ...)."""
    fit: Callable[[RatingModel, Any, FitContext], list[dict]] | None = None
    """For models not trained by gradient steps: ``fit(model, config, ctx)`` -> history rows."""
