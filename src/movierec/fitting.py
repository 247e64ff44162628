"""Fit a recommender: the rating model, the ranker, and the list settings chosen on validation.

The rater trains on the fit part and early-stops on the validation part (where it has
candidate settings, ``ModelSpec.candidates``, each is fitted and the lowest on the
validation part kept, ``raters``); the ranker's settings and the way lists combine ranker
and rater are chosen on the validation part (``selection``), then the ranker is refitted
on both parts. Test ratings never come here. What a model needs beyond that (EASE's
genres, its size limit) it says through its ``ModelSpec``; nothing here names a model.

``fit`` takes names and settings as a user gives them and resolves them into a
``FitPlan``; ``fit_plan`` takes one resolved at the edge (``pipeline.run``). Both return
the recommender and a ``FitReport`` beside it, and report every phase to one ``Progress``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from movierec import models, selection, sittings
from movierec.data.ratings import Ratings
from movierec.errors import ConfigError
from movierec.models.base import Ranker, RankerData, RatingModel
from movierec.plan import FitPlan, choose_ranker
from movierec.progress import Progress
from movierec.raters import FittedRater, fit_rater
from movierec.recommend import ListConfig, Recommender
from movierec.recommend.derived import Derived
from movierec.references import fallback_biases
from movierec.report import FitReport
from movierec.sittings import SittingConfig, Sittings
from movierec.training import Epoch, TrainConfig, best_epoch, resolve_device, run

RANKER_PATIENCE, SMALL_RANKER_PATIENCE = 2, 5
"""Sweeps without a better validation NDCG@10 before a ranker's fit stops; the second for a
validation part of fewer than ``selection.SMALL_VAL`` ratings, whose NDCG jumps from sweep to
sweep. iALS at ML-20M's shape (synthetic) peaks after 1-4 sweeps and then loses up to two
thirds of its NDCG, where on ml-latest-small it rises for 8-10, with dips on the way: patience
2 stopped an implicit ml-latest-small log at sweep 3, test NDCG@10 0.3213 against 0.3275
after 15 (bench/NOTES.md)."""


DEFAULT_SITTINGS = SittingConfig()
"""Sittings as ``fit`` finds them unless told otherwise."""


def fit_ranker(
    parts: list[Ratings],
    name: str,
    config: object | None = None,
    *,
    seed: int = 0,
    device: str = "auto",
    rank: Callable[[Ranker], float] | None = None,
    patience: int = RANKER_PATIENCE,
    progress: Progress | None = None,
    label: str | None = None,
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
        rating_max=first.rating_scale()[1],
        rating_floor=first.rating_floor(),
        generator=torch.Generator().manual_seed(seed),
        genres=None if genres is None else torch.from_numpy(genres).to(dev),
    )
    if spec.as_fitted is not None:
        config = spec.as_fitted(config, data)  # so reports and the manifest say what was fitted
    assert spec.sweeps is not None  # every ranker is fitted by sweeps of its own
    fitter = spec.sweeps(ranker, config, data)
    planned, label = fitter.planned or 1, label or name
    with (progress or Progress()).phase(f"{label}: fitting", total=planned if planned > 1 else None) as phase:
        on_epoch = phase.sweeps(label, planned, rows=False)  # a ranker's sweeps: counted, not listed
        if rank is None or planned == 1 or not hasattr(config, "sweeps"):
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
    sitting_config: SittingConfig | None = DEFAULT_SITTINGS,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> tuple[Recommender, FitReport]:
    """Train the rating model ``model`` on ``fit_part`` and the ranker on fit and validation parts together.

    The rater early-stops on ``val_part``; the ranker's settings, and for one fitted by
    sweeps how many, are chosen by its lists on ``val_part`` (``selection``), and it is
    then refitted with them on both parts. Where the validation ratings fall in the fit
    part's sittings, their shifts are fitted too (``sittings``; ``sitting_config`` None: never). ``model``
    None trains no rater: for a log without ratings, where only ranking applies. Returns
    the recommender and a ``FitReport`` (choices, histories, seconds); ``progress`` hears
    of every phase as it runs (by default, the ``movierec`` logger).
    """
    n_train = len(fit_part) + (0 if val_part is None else len(val_part))
    plan = FitPlan.of(
        model,
        n_train,
        ranker=ranker,
        training=train_config,
        rater_config=model_config,
        ranker_config=ranker_config,
        lists=lists,
        sittings=sitting_config,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
    )
    return fit_plan(plan, fit_part, val_part, progress or Progress())


def fit_plan(
    plan: FitPlan, fit_part: Ratings, val_part: Ratings | None, progress: Progress
) -> tuple[Recommender, FitReport]:
    """``fit`` for a plan resolved already (``pipeline.run`` resolves one at the edge)."""
    if len(fit_part) == 0:
        raise ConfigError("there are no training ratings left after the split")
    spec = plan.rater
    if fit_part.implicit and spec is not None:
        raise ConfigError(
            f"{fit_part.name} has no ratings (every row is a positive), so no rating model applies; "
            "train without --model: a ranker alone, with no RMSE"
        )
    seen = [fit_part] if val_part is None or len(val_part) == 0 else [fit_part, val_part]
    global_mean = float(np.mean(fit_part.rating, dtype=np.float64))
    scale = fit_part.rating_scale()
    ranker_name, why = choose_ranker(plan.ranker, fit_part.n_users, fit_part.n_items)
    rater: RatingModel | None = None
    fitted = FittedRater(None, plan.rater_config, [], None, 0.0)
    if spec is not None:
        fitted = fit_rater(spec, plan, fit_part, val_part, global_mean, scale, progress)
        rater = fitted.model
    b_u, b_i = fallback_biases(fit_part, global_mean)
    fit_history = fit_part.by_user()
    fit_derived = Derived.of(fit_history, fit_part.index, fit_part.titles)

    def on_fit_part(ranked: Ranker, config: object, lists: ListConfig) -> Recommender:
        """A recommender of the fit part alone: what validation scores, its counts derived once."""
        return Recommender(
            ranker=ranked,
            ranker_name=ranker_name,
            ranker_config=config,
            rater=rater,
            rater_name=None if spec is None else spec.name,
            rater_config=fitted.config,
            index=fit_part.index,
            history=fit_history,
            global_mean=global_mean,
            scale=scale,
            user_bias=b_u,
            item_bias=b_i,
            titles=fit_part.titles,
            lists=lists,
            derived=fit_derived,
        )

    seed, device = plan.training.seed, plan.training.device
    small_val = val_part is None or len(val_part) < selection.SMALL_VAL
    patience = SMALL_RANKER_PATIENCE if small_val else RANKER_PATIENCE
    with progress.phase("choosing the ranker's and the lists' settings on the validation part", key="lists"):
        choice = selection.choose(
            on_fit_part,
            rater is not None,
            fit_part,
            val_part,
            ranker_name,
            lambda config, rank, label: fit_ranker(
                [fit_part],
                ranker_name,
                config,
                seed=seed,
                device=device,
                rank=rank,
                patience=patience,
                progress=progress,
                label=label,
            )[:2],  # fmt: skip
            ranker_config=plan.ranker_config,
            lists=plan.lists,
            seed=seed,
            progress=progress,
        )
    with progress.phase(f"{ranker_name}: refit on the fit and validation parts", key="ranker"):
        ranked, ranker_config, ranker_history = fit_ranker(
            seen, ranker_name, choice.ranker_config, seed=seed, device=device, progress=progress, label=ranker_name
        )
    choice = replace(choice, ranker_config=ranker_config)  # as fitted: genres 0 where the log has none
    shifts, sittings_choice = None, None
    if plan.sittings is not None:
        with progress.phase("sitting shifts", key="sittings"):
            fit_view = on_fit_part(ranked, ranker_config, choice.lists)
            shifts, sittings_choice = _fit_sittings(fit_view, fit_part, val_part, plan.sittings)
    report = FitReport(
        dataset=fit_part.name,
        implicit=fit_part.implicit,
        train_config=plan.training,
        history=tuple(fitted.history),
        ranker_history=tuple(ranker_history),
        ranker_choice=why,
        rater_choice=fitted.choice,
        sittings_choice=sittings_choice,
        lists_choice=choice.describe(ranker_name, None if spec is None else spec.name),
        lists_tried=tuple(choice.tried),
        rater_seconds=fitted.seconds,
        seconds=dict(progress.seconds),
    )
    recommender = replace(
        on_fit_part(ranked, ranker_config, choice.lists),
        history=fit_part.by_user(*seen[1:]),
        sittings=shifts,
        info=report.as_info(),
        derived=None,
    )
    return recommender, report


def _fit_sittings(
    base: Recommender, fit_part: Ratings, val_part: Ratings | None, config: SittingConfig
) -> tuple[Sittings | None, str | None]:
    """The fit part's sittings, weighted on the validation part, and a line saying so; None where they cannot help.

    ``base`` is the recommender of the fit part alone: its predictions are what the shifts correct.
    """
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
