"""The whole job in a few calls: split, fit, evaluate, and write a run directory.

Test ratings are touched once, at the end; early stopping and any tuning see only the
validation part carved from the training data.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from movierec import checkpoints, distributed, fitting, outdir, persist
from movierec.data.ratings import Ratings
from movierec.data.splits import random_split, split_rows
from movierec.data.synthetic import Synthetic
from movierec.errors import ConfigError
from movierec.evaluation import (
    default_relevance,
    error_by_activity,
    evaluate,
    evaluate_ranking,
    predict_test,
    rating_distribution,
)
from movierec.plan import FitPlan
from movierec.plotting import loss_plot
from movierec.progress import Progress
from movierec.recommend import Recommender
from movierec.references import baseline_of, popular_of
from movierec.training import as_json, resolve_device

RANKING_MAX_USERS = 10_000
"""Test users (drawn at random) whose top-10 a training run scores; ``movierec evaluate`` ranks them all.

The ranker scores every item and the rater only the list's candidates, so this costs
seconds even at ML-20M size and even for the notebook's network."""


@dataclass(frozen=True)
class SplitConfig:
    """How ratings are held out for testing and validation."""

    how: str = "random"
    """``random`` (the notebook's), ``user`` (a fraction of each user's) or ``time`` (the latest)."""
    test_fraction: float = 0.2
    """Share of all ratings held out for the final test."""
    val_fraction: float = 0.05
    """Share of the training ratings carved out (at random) for validation and early stopping."""
    seed: int = 0
    """Seeds both hold-outs."""

    def __post_init__(self) -> None:
        # Named as the command line spells them, since that is where a bad value comes from.
        for flag, value in (("--test-fraction", self.test_fraction), ("--val-fraction", self.val_fraction)):
            if not 0.0 < value < 1.0:
                raise ConfigError(f"{flag} must be between 0 and 1 (exclusive), got {value}")
        check_seed(self.seed)


@dataclass(frozen=True)
class Parts:
    """The three disjoint parts of a run's data, over one id index."""

    fit: Ratings
    """What the model is trained on."""
    val: Ratings
    """Carved from the training data: validation curves and early stopping."""
    test: Ratings
    """Held out; scored once at the end."""
    train_rows: np.ndarray
    """Positions in the split log of the fit and validation ratings."""
    test_rows: np.ndarray | None
    """Positions in the split log of the test ratings; None when the test was given."""

    @property
    def n_train(self) -> int:
        """Training ratings, fit and validation parts together: what size-dependent defaults go by."""
        return len(self.fit) + len(self.val)


def check_seed(seed: int) -> None:
    """A seed is a whole number in 0 .. 2**63 - 1 (what every random generator here accepts)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ConfigError(f"--seed must be a whole number from 0 to 2**63 - 1, got {seed!r}")


def split(ratings: Ratings, config: SplitConfig = SplitConfig(), test: Ratings | None = None) -> Parts:
    """Hold out a test part (or use ``test`` as given) and carve validation from the rest.

    The one place the split seeds are used: the test part by ``config.seed``, the
    validation part by ``config.seed + 1``, so any command can make the same parts again.
    """
    test_rows = None
    if test is None:
        train_rows, test_rows = split_rows(ratings, config.how, config.test_fraction, config.seed)
        train_part, test = ratings.take(train_rows), ratings.take(test_rows)
    else:
        train_rows, train_part = np.arange(len(ratings)), ratings
    fit_pos, val_pos = random_split(len(train_part), config.val_fraction, config.seed + 1)
    return Parts(train_part.take(fit_pos), train_part.take(val_pos), test, train_rows, test_rows)


def run(
    ratings: Ratings,
    model: str | None,
    out: Path,
    *,
    ranker: str = "auto",
    split_config: SplitConfig = SplitConfig(),
    test: Ratings | None = None,
    train_overrides: dict | None = None,
    model_config: object | None = None,
    ranker_config: object | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    truth: Synthetic | None = None,
) -> dict:
    """Split, train, test once, and write ``out`` (model, metrics.json, loss.png) atomically.

    Checkpoints live in ``<out>.partial/`` until the run completes, so an interrupted or
    failed run leaves any earlier model in ``out`` untouched and can be resumed.
    ``progress`` hears of every phase (by default, the ``movierec`` logger); the metrics
    keep each phase's wall time and the run's, since ``progress`` began (``phase_seconds``,
    ``wall_seconds``: a caller that loads the data first makes its ``Progress`` before that).

    Under torchrun every rank trains; only rank 0 tests and writes ``out``, and the
    others return just ``model``, ``dataset`` and ``history``. When torchrun restarts
    failed workers (``--max-restarts``), they resume from the checkpoint by themselves.
    """
    progress = progress or Progress()
    with progress.phase("splitting the ratings", key="split"):
        parts = split(ratings, split_config, test)
    partial = out.with_name(out.name + ".partial")
    # Resolved once, for the split's true size: a bad flag fails here, before anything is written.
    plan = FitPlan.of(
        model,
        parts.n_train,
        ranker=ranker,
        train_overrides=train_overrides,
        rater_config=model_config,
        ranker_config=ranker_config,
        checkpoint_dir=partial,
    )
    # One run at a time per --out (rank 0 alone writes it): a second is refused before any work.
    if distributed.is_main():
        outdir.check_writable(out)
    holding = outdir.lock(out) if distributed.is_main() else contextlib.nullcontext()
    with holding:
        outdir.check_replaceable(out)
        if distributed.is_main() and not resume:  # --resume checks the checkpoint itself, below
            checkpoints.check_ours(partial)
        extra: dict = {}
        if truth is not None and parts.test_rows is not None:
            extra = {"synthetic": True, **truth.report(parts.train_rows, parts.test_rows)}
            progress.note(
                f"synthetic data ({ratings.name}): the best test RMSE any model can reach here is "
                f"{extra['noise_floor']:.4f}; the best list's NDCG@10 is {extra['oracle_ndcg']:.4f}"
            )
        resume = resume or (distributed.elastic_restart() and (partial / checkpoints.META).exists())
        if resume and plan.rater is not None:
            checkpoints.check(partial, plan.rater.name, plan.training, checkpoints.fingerprint(parts.fit))
        recommender, report = fitting.fit_plan(replace(plan, resume=resume), parts.fit, parts.val, progress)
        if not distributed.is_main():
            distributed.finish()  # waits for rank 0 to write the model (see the end)
            return {"model": model, "dataset": ratings.name, "history": list(report.history)}
        for line in report.choices:
            progress.note(line)
        with progress.phase("scoring the test part", key="test"):
            metrics = test_metrics(recommender, parts, split_config, test is not None)
        metrics = {
            "model": model,
            "ranker": recommender.ranker_name,
            "rater_choice": report.rater_choice,
            "sittings_choice": report.sittings_choice,
            "ranker_choice": report.ranker_choice,
            "ranker_config": asdict(recommender.ranker_config),  # type: ignore[call-overload]
            "lists": asdict(recommender.lists),
            "lists_choice": report.lists_choice,
            "dataset": ratings.name,
            "implicit": ratings.implicit,
            "split": asdict(split_config) if test is None else {"how": "given", "test": parts.test.name},
            "n_train": len(parts.fit),
            "n_val": len(parts.val),
            "n_test": len(parts.test),
            **metrics,
            "history": as_json(list(report.history)),
            "ranker_history": as_json(list(report.ranker_history)),
            # Every candidate's fit where train compared the rater's settings.
            "train_seconds": report.rater_seconds,
            "ranker_seconds": report.ranker_seconds,
            "device": str(resolve_device(plan.training.device)),
            "train_config": asdict(plan.training),
            **extra,
        }
        with progress.phase("saving the model", key="save"):
            info = {**report.as_info(), "split": metrics["split"], "metrics": _summary(metrics)}
            plot = loss_plot(list(report.history), f"{model or recommender.ranker_name} on {ratings.name}", metrics)
            # The run's wall time to here; what saving takes is too little to wait for.
            metrics.update(wall_seconds=time.perf_counter() - progress.started, phase_seconds=dict(progress.seconds))
            persist.save(
                replace(recommender, info=info),
                out,
                extra_files={"metrics.json": json.dumps(metrics, indent=1).encode(), "loss.png": plot},
            )
        checkpoints.remove(partial)
        # Every rank leaves the process group together, once the model is written: a rank that
        # tore its end down while another was still running could abort the whole job.
        distributed.finish()
        return metrics


def test_metrics(recommender: Recommender, parts: Parts, split_config: SplitConfig, given: bool) -> dict:
    """The test part's scores: lists against the popular list's, and ratings against the baseline's."""
    relevance = 1.0 if parts.fit.implicit else default_relevance(recommender.scale)
    # Every item ranked for each user; users capped so a large run's report stays a minute.
    ranking, ranking_popular = (
        evaluate_ranking(r, parts.test, k=10, relevance=relevance, max_users=RANKING_MAX_USERS, seed=split_config.seed)
        for r in (recommender, popular_of(recommender))
    )
    metrics: dict = {"ranking": ranking, "ranking_popular": ranking_popular}
    if recommender.rater is not None:
        predictions = predict_test(recommender, parts.test)
        scores = evaluate(recommender, parts.test, predictions=predictions)
        base = evaluate(baseline_of(recommender), parts.test)
        if recommender.sittings is not None:
            alone = evaluate(replace(recommender, sittings=None), parts.test)
            metrics.update(test_rmse_without_sittings=alone["rmse"], test_mae_without_sittings=alone["mae"])
        metrics.update(
            test_rmse=scores["rmse"],
            test_mae=scores["mae"],
            test_n_fallback=scores["n_fallback"],
            baseline_rmse=base["rmse"],
            baseline_mae=base["mae"],
            error_by_activity=error_by_activity(recommender, parts.test, predictions=predictions),
            rating_distribution=rating_distribution(recommender, parts.test, predictions=predictions),
        )
    return metrics


def _summary(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "history"}
