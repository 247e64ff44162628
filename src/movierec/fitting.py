"""Fit a recommender: the rating model, the ranker, and the list settings chosen on validation.

The rater trains on the fit part and early-stops on the validation part (where it has
candidate settings, ``ModelSpec.candidates``, each is fitted and the lowest on the
validation part kept); the ranker's
settings and the way lists combine ranker and rater are chosen on the validation part,
then the ranker is refitted on both parts. Test ratings never come here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from movierec import models, selection, sittings
from movierec.data.ratings import Ratings
from movierec.errors import ConfigError, MovierecError
from movierec.models import ease
from movierec.models.base import Ranker, RankerData, RatingModel
from movierec.models.baseline import Baseline, fit_biases
from movierec.models.popular import Popular, PopularConfig, popularity
from movierec.recommend import ListConfig, Recommender
from movierec.sittings import SittingConfig, Sittings
from movierec.training import Epoch, TrainConfig, as_json, best_epoch, resolve_device, run, train

RANKER_PATIENCE, SMALL_RANKER_PATIENCE = 2, 5
"""Sweeps without a better validation NDCG@10 before a ranker's fit stops; the second for a
validation part of fewer than ``selection.SMALL_VAL`` ratings, whose NDCG jumps from sweep to
sweep. iALS at ML-20M's shape (synthetic) peaks after 1-4 sweeps and then loses up to two
thirds of its NDCG, where on ml-latest-small it rises for 8-10, with dips on the way: patience
2 stopped an implicit ml-latest-small log at sweep 3, test NDCG@10 0.3213 against 0.3275
after 15 (bench/NOTES.md)."""


DEFAULT_SITTINGS = SittingConfig()
"""Sittings as ``fit`` finds them unless told otherwise."""


def rater_spec(name: str) -> models.ModelSpec:
    """The registered rating model ``name``; a ranker's name is a clear error."""
    if name not in models.MODELS:
        raise ConfigError(f"unknown rating model {name!r}{_case_hint(name)}; --model takes one of: {_names('rater')}")
    spec = models.get(name)
    if spec.kind != "rater":
        raise ConfigError(f"{name!r} is a ranker, not a rating model; pass it as --ranker {name}")
    return spec


def _names(kind: str) -> str:
    return ", ".join(n for n, s in models.MODELS.items() if s.kind == kind)


def _case_hint(name: str) -> str:
    """A hint for a name that is right but for its case (``EASE``), or empty."""
    if not name.strip():
        return " (an empty name)"
    return f" (names are lower case: {name.lower()})" if name.lower() in models.MODELS else ""


def choose_ranker(name: str, n_users: int, n_items: int) -> tuple[str, str | None]:
    """The ranker ``auto`` means for this catalogue, and a line saying why (None when named)."""
    if name != "auto":
        if name not in models.MODELS:
            raise ConfigError(
                f"unknown ranker {name!r}{_case_hint(name)}; --ranker takes one of: auto, {_names('ranker')}"
            )
        if models.get(name).kind != "ranker":
            raise ConfigError(
                f"{name!r} is a rating model, not a ranker; --ranker takes one of: auto, {_names('ranker')}"
            )
        return name, None
    if ease.fits(n_users, n_items):
        return "ease", None
    return "ials", (
        f"ranker: ials, since {n_items:,} items x {n_users:,} users is too large for EASE's dense item-item "
        f"matrix (up to {ease.MAX_ITEMS:,} items and {ease.MAX_GRAM_FLOPS:.0e} multiply-adds); --ranker ease forces it"
    )


def fit_ranker(
    parts: list[Ratings],
    name: str,
    config: object | None = None,
    *,
    seed: int = 0,
    device: str = "auto",
    on_epoch: Callable[[Epoch], None] | None = None,
    rank: Callable[[Ranker], float] | None = None,
    patience: int = RANKER_PATIENCE,
) -> tuple[Ranker, object, list[Epoch]]:
    """Fit the ranker called ``name`` on the ratings of ``parts`` together; returns it, its config and history.

    With ``rank`` (the ranker as fitted so far -> its validation NDCG@10), a ranker fitted
    by several sweeps stops once ``patience`` of them bring no better NDCG and keeps
    its best sweep; the config returned then says how many sweeps that was, for a refit
    (such a ranker's config counts its sweeps in ``sweeps``, as ``IALSConfig`` does).
    """
    spec = models.get(name)
    config = config or spec.config_type()
    first = parts[0]
    dev = resolve_device(device)
    ranker = spec.build(config, first.n_users, first.n_items, torch.Generator().manual_seed(seed)).to(dev)

    def column(name: str, dtype: torch.dtype) -> torch.Tensor:
        return torch.from_numpy(np.concatenate([getattr(p, name) for p in parts])).to(dev, dtype)

    genres = first.genre_matrix()
    data = RankerData(
        user_idx=column("user_idx", torch.int64),
        item_idx=column("item_idx", torch.int64),
        rating=column("rating", torch.float32),
        n_users=first.n_users,
        rating_max=float(max(float(p.rating.max()) for p in parts if len(p))),
        generator=torch.Generator().manual_seed(seed),
        genres=None if genres is None else torch.from_numpy(genres).to(dev),
    )
    if data.genres is None and isinstance(config, ease.EASEConfig) and config.genres:
        config = replace(config, genres=0.0)  # so reports and the manifest say no genres were used
    assert spec.sweeps is not None  # every ranker is fitted by sweeps of its own
    fitter = spec.sweeps(ranker, config, data)
    if rank is None or (fitter.planned or 1) == 1 or not hasattr(config, "sweeps"):
        return ranker.eval(), config, run(ranker, fitter, 1, on_epoch=on_epoch)
    history = run(ranker, fitter, 1, rank=lambda: rank(ranker.eval()), patience=patience, on_epoch=on_epoch)
    best = best_epoch(history)  # the sweep whose state run restored (the first of equals)
    if best is None:  # no sweep gave a usable NDCG: the fit stands as it ran
        return ranker.eval(), config, history
    return ranker.eval(), replace(config, sweeps=best.epoch), history  # type: ignore[type-var]


def fit(
    fit_part: Ratings,
    val_part: Ratings | None = None,
    model: str | None = "mlp",
    *,
    ranker: str = "auto",
    train_config: TrainConfig | None = None,
    model_config: object | None = None,
    ranker_config: object | None = None,
    lists: ListConfig | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    on_epoch: Callable[[Epoch], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    announce: Callable[[str], None] | None = None,
    sitting_config: SittingConfig | None = DEFAULT_SITTINGS,
) -> tuple[Recommender, list[Epoch]]:
    """Train the rating model ``model`` on ``fit_part`` and the ranker on fit and validation parts together.

    The rater early-stops on ``val_part``; the ranker's settings, and for one fitted by
    sweeps how many, are chosen by its lists on ``val_part`` (``selection``), and it is
    then refitted with them on both parts. Where the validation ratings fall in the fit
    part's sittings, their shifts are fitted too (``sittings``; ``sitting_config`` None: never). ``model``
    None trains no rater: for a log without ratings, where only ranking applies. Returns
    the recommender and the rater's history (the ranker's is in ``info``).
    """
    if len(fit_part) == 0:
        raise ConfigError("there are no training ratings left after the split")
    if fit_part.implicit and model is not None:
        raise ConfigError(
            f"{fit_part.name} has no ratings (every row is a positive), so no rating model applies; "
            "train without --model: a ranker alone, with no RMSE"
        )
    seen = [fit_part] if val_part is None or len(val_part) == 0 else [fit_part, val_part]
    global_mean = float(np.mean(fit_part.rating, dtype=np.float64))
    scale = fit_part.rating_scale()
    ranker_name, why = choose_ranker(ranker, fit_part.n_users, fit_part.n_items)
    spec = None if model is None else rater_spec(model)
    n_train = len(fit_part) + (0 if val_part is None else len(val_part))
    train_config = train_config or TrainConfig.for_model(spec, n_train)
    rater: RatingModel | None = None
    history: list[Epoch] = []
    rater_choice, rater_seconds = None, 0.0
    if spec is not None:
        rater, model_config, history, rater_choice, rater_seconds = _fit_rater(
            spec,
            model_config,
            fit_part,
            val_part,
            train_config,
            global_mean=global_mean,
            scale=scale,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            on_epoch=on_epoch,
            progress=progress,
            announce=announce,
        )
    b_u, b_i = fit_biases(
        fit_part.user_idx,
        fit_part.item_idx,
        fit_part.rating.astype(np.float64) - global_mean,
        fit_part.n_users,
        fit_part.n_items,
    )
    # The rater and the fit part's history, to compare list settings on the validation part.
    base = Recommender(
        ranker=Popular(fit_part.n_items),
        ranker_name="popular",
        ranker_config=PopularConfig(),
        rater=rater,
        rater_name=None if spec is None else spec.name,
        rater_config=model_config if spec is not None else None,
        index=fit_part.index,
        history=fit_part.by_user(),
        global_mean=global_mean,
        scale=scale,
        user_bias=b_u,
        item_bias=b_i,
        titles=fit_part.titles,
    )
    shifts, sittings_choice = (None, None)
    if sitting_config is not None:
        shifts, sittings_choice = _fit_sittings(base, fit_part, val_part, sitting_config)
    seed, device = train_config.seed, train_config.device
    small_val = val_part is None or len(val_part) < selection.SMALL_VAL
    patience = SMALL_RANKER_PATIENCE if small_val else RANKER_PATIENCE
    choice = selection.choose(
        base,
        fit_part,
        val_part,
        ranker_name,
        lambda config, rank: fit_ranker(
            [fit_part], ranker_name, config, seed=seed, device=device, rank=rank, patience=patience
        )[:2],
        ranker_config=ranker_config,
        lists=lists,
        seed=seed,
    )
    ranked, ranker_config, ranker_history = fit_ranker(
        seen, ranker_name, choice.ranker_config, seed=seed, device=device
    )
    choice = replace(choice, ranker_config=ranker_config)  # as fitted: genres 0 where the log has none
    recommender = replace(
        base,
        ranker=ranked,
        ranker_name=ranker_name,
        ranker_config=ranker_config,
        history=fit_part.by_user(*seen[1:]),
        lists=choice.lists,
        sittings=shifts,
        info={
            "dataset": fit_part.name,
            "implicit": fit_part.implicit,
            "train_config": asdict(train_config),
            "ranker_history": as_json(ranker_history),
            "ranker_choice": why,
            "rater_choice": rater_choice,
            "rater_seconds": rater_seconds,
            "sittings_choice": sittings_choice,
            "lists_choice": choice.describe(ranker_name, None if spec is None else spec.name),
            "lists_tried": choice.tried,
        },
    )
    return recommender, history


def _fit_sittings(
    base: Recommender, fit_part: Ratings, val_part: Ratings | None, config: SittingConfig
) -> tuple[Sittings | None, str | None]:
    """The fit part's sittings, weighted on the validation part, and a line saying so; None where they cannot help."""
    if base.rater is None or val_part is None or len(val_part) == 0:
        return None, None
    if fit_part.timestamp is None or val_part.timestamp is None:
        return None, "no sitting shifts: the ratings have no times"
    share = sittings.share_in_sittings(
        fit_part.user_idx, fit_part.timestamp, val_part.user_idx, val_part.timestamp, config.gap
    )
    if share < config.min_share:
        return None, f"no sitting shifts: {share:.0%} of validation ratings fall in a training sitting"
    # Checked before this, the one costly step: the rater's predictions for every fit rating.
    residual = fit_part.rating - base.predict_idx(fit_part.user_idx, fit_part.item_idx)
    found = sittings.find_sittings(fit_part.user_idx, fit_part.timestamp, residual, config)
    val_residual = val_part.rating - base.predict_idx(val_part.user_idx, val_part.item_idx)
    fitted = sittings.weighted(found, val_part.user_idx, val_part.timestamp, val_residual)
    if fitted is None:
        return None, "no sitting shifts: the sittings' residuals did not carry over to the validation part"
    shifted, weight = fitted
    with_shift = replace(base, sittings=shifted).predict_idx(val_part.user_idx, val_part.item_idx, val_part.timestamp)
    before, after = _rmse(val_residual), _rmse(val_part.rating - with_shift)
    return shifted, (
        f"sitting shifts: {share:.0%} of validation ratings fall in one of {len(found.start):,} training sittings; "
        f"weight {weight:.2f}, validation RMSE {before:.4f} -> {after:.4f}"
    )


def _rmse(residual: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(residual, dtype=np.float64))))


def _fit_rater(
    spec: models.ModelSpec,
    model_config: object | None,
    fit_part: Ratings,
    val_part: Ratings | None,
    train_config: TrainConfig,
    *,
    announce: Callable[[str], None] | None,
    checkpoint_dir: Path | None,
    **train_args: Any,
) -> tuple[RatingModel, object, list[Epoch], str | None, float]:
    """The rater trained with ``model_config``, or with each of its candidates, the lowest on validation kept.

    Returns the rater, its settings, its history, after a comparison a line saying what was
    chosen (else None), and the seconds every fit took together.
    """
    configs = [model_config] if model_config is not None else rater_candidates(spec, fit_part, val_part)
    if len(configs) > 1 and train_args.get("resume"):
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
        if announce and len(configs) > 1:
            announce(f"{spec.name}, settings {number} of {len(configs)}: {_changes(config, configs[0])}")
        model = spec.build(config, fit_part.n_users, fit_part.n_items, torch.Generator().manual_seed(train_config.seed))
        # One fit's checkpoint would not resume another's: a comparison starts over.
        directory = checkpoint_dir if len(configs) == 1 else None
        history = train(model, spec, config, fit_part, val_part, train_config, checkpoint_dir=directory, **train_args)
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
    return (*kept, line, seconds)


def rater_candidates(spec: models.ModelSpec, fit_part: Ratings, val_part: Ratings | None) -> list:
    """The settings ``train`` compares for this rater: its candidates where it has some and a
    validation part can tell them apart, else its defaults alone."""
    if spec.candidates is None or val_part is None or len(val_part) == 0:
        return [spec.config_type()]
    return spec.candidates(fit_part.n_users, fit_part.n_items, len(fit_part)) or [spec.config_type()]


def describe_rater_choice(name: str, configs: list, val_rmse: list[float | None], chosen: object) -> str:
    """One line for the run's output: which settings won on the validation part, and against what."""
    scores = "; ".join(
        f"{_changes(c, configs[0])}: {'n/a' if v is None else f'{v:.4f}'}"
        for c, v in zip(configs, val_rmse, strict=True)
    )
    return f"{name}: {_changes(chosen, configs[0])}, the lowest validation RMSE of {len(configs)} settings ({scores})"


def _changes(config: object, default: object) -> str:
    """The fields where ``config`` differs from ``default``, as ``reg 0.03, dim 16``; or ``defaults``."""
    base = asdict(default)  # type: ignore[call-overload]
    fields = {k: v for k, v in asdict(config).items() if v != base[k]}  # type: ignore[call-overload]
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items()) or "defaults"


def popular_of(recommender: Recommender) -> Recommender:
    """The same recommender listing ``popular`` for everyone: the list any ranker must beat."""
    ranker = Popular(recommender.index.n_items)
    score = popularity(recommender.global_mean, recommender.item_bias, recommender.item_counts, recommender.scale)
    ranker.item_score.copy_(torch.from_numpy(score).float())
    return replace(
        recommender,
        ranker=ranker,
        ranker_name="popular",
        ranker_config=PopularConfig(),
        lists=ListConfig(gate=False, discount=0.0),
    )


def baseline_of(recommender: Recommender) -> Recommender:
    """The same recommender with its rater swapped for the fallback biases (the baseline)."""
    spec = models.get("baseline")
    base = Baseline(recommender.index.n_users, recommender.index.n_items)
    with torch.no_grad():
        base.user_bias.copy_(torch.from_numpy(recommender.user_bias))
        base.item_bias.copy_(torch.from_numpy(recommender.item_bias))
    # The sittings' weight was fitted to the rater's residuals, not the baseline's.
    return replace(
        recommender, rater=base.eval(), rater_name="baseline", rater_config=spec.config_type(), sittings=None
    )
