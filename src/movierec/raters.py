"""Fitting the rating model: with the settings given, or each of its candidates, the lowest on validation kept."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import NamedTuple

import torch

from movierec import models
from movierec.data.ratings import Ratings
from movierec.errors import ConfigError, MovierecError
from movierec.models.base import RatingModel
from movierec.plan import FitPlan
from movierec.progress import Progress
from movierec.training import Epoch, train


class FittedRater(NamedTuple):
    """The rater ``_fit_rater`` kept, with its settings, history, choice line and seconds."""

    model: RatingModel | None
    config: object | None
    history: list[Epoch]
    choice: str | None
    seconds: float


def fit_rater(
    spec: models.ModelSpec,
    plan: FitPlan,
    fit_part: Ratings,
    val_part: Ratings | None,
    global_mean: float,
    scale: tuple[float, float],
    progress: Progress,
) -> FittedRater:
    """The rater trained with the plan's settings, or with each of its candidates, the lowest on validation kept.

    Returns the rater, its settings, its history, after a comparison a line saying what was
    chosen (else None), and the seconds every fit took together.
    """
    train_config = plan.training
    configs = [plan.rater_config] if plan.rater_config is not None else rater_candidates(spec, fit_part, val_part)
    if len(configs) > 1 and plan.resume:
        raise ConfigError(
            f"--resume: {spec.name} compares {len(configs)} settings on the validation part, and a comparison "
            "keeps no checkpoint (one fit's would not resume another's); run again without --resume, or train "
            "one setting with --config"
        )
    kept: tuple[RatingModel, object, list[Epoch]] | None = None
    best: float | None = None
    seconds = 0.0
    tried: list[float | None] = []
    for number, config in enumerate(configs, 1):
        label = spec.name
        if len(configs) > 1:
            label = f"{spec.name}, settings {number} of {len(configs)} ({changes(config, configs[0])})"
        model = spec.build(config, fit_part.n_users, fit_part.n_items, torch.Generator().manual_seed(train_config.seed))
        # One fit's checkpoint would not resume another's: a comparison starts over.
        directory = plan.checkpoint_dir if len(configs) == 1 else None
        with progress.phase(f"{label}: training", total=train_config.epochs, key="rater") as phase:
            history = train(
                model, spec, config, fit_part, val_part, train_config, global_mean=global_mean, scale=scale,
                checkpoint_dir=directory, resume=plan.resume, phase=phase, label=label,
            )  # fmt: skip
        # What the kept state scores: the best epoch's with early stopping (restored), else the last's.
        scores = [h.val_rmse for h in (history if train_config.patience else history[-1:])]
        val_rmse = min((v for v in scores if v is not None and math.isfinite(v)), default=None)
        tried.append(val_rmse)
        seconds += sum(h.seconds for h in history)
        # The defaults (first) stand unless another validates lower.
        if kept is None or (val_rmse is not None and (best is None or val_rmse < best)):
            kept, best = (model.eval(), config, history), val_rmse
    assert kept is not None
    if best is None and any(h.val_rmse is not None for h in kept[2]):
        # Validated, but never to a finite RMSE: a finite training loss can hide it (Adam).
        hint = f"lower --lr (now {train_config.lr})" if spec.sweeps is None else "check the data and settings"
        raise MovierecError(f"training diverged: {spec.name}'s validation RMSE was never finite; {hint}")
    line = describe_rater_choice(spec.name, configs, tried, kept[1]) if len(configs) > 1 else None
    return FittedRater(*kept, line, seconds)


def rater_candidates(spec: models.ModelSpec, fit_part: Ratings, val_part: Ratings | None) -> list:
    """The settings ``train`` compares for this rater: its candidates where it has some and a
    validation part can tell them apart, else its defaults alone."""
    if spec.candidates is None or val_part is None or len(val_part) == 0:
        return [spec.config_type()]
    return spec.candidates(fit_part.n_users, fit_part.n_items, len(fit_part)) or [spec.config_type()]


def describe_rater_choice(name: str, configs: list, val_rmse: list[float | None], chosen: object) -> str:
    """One line for the run's output: which settings won on the validation part, and against what."""
    scores = "; ".join(
        f"{changes(c, configs[0])}: {'n/a' if v is None else f'{v:.4f}'}"
        for c, v in zip(configs, val_rmse, strict=True)
    )
    return f"{name}: {changes(chosen, configs[0])}, the lowest validation RMSE of {len(configs)} settings ({scores})"


def changes(config: object, default: object) -> str:
    """The fields where ``config`` differs from ``default``, as ``reg 0.03, dim 16``; or ``defaults``."""
    base = asdict(default)  # type: ignore[call-overload]
    fields = {k: v for k, v in asdict(config).items() if v != base[k]}  # type: ignore[call-overload]
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items()) or "defaults"
