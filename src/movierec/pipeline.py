"""The whole job in a few calls: split, fit, evaluate, and write a run directory.

Test ratings are touched once, at the end; early stopping and any tuning see only the
validation part carved from the training data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from movierec import distributed, models, persist
from movierec.data.ratings import Ratings
from movierec.data.splits import random_split, split_rows
from movierec.errors import ConfigError
from movierec.evaluate import default_relevance, error_by_activity, evaluate, evaluate_ranking, rating_distribution
from movierec.models.baseline import Baseline, fit_biases
from movierec.plotting import loss_plot
from movierec.recommend import Recommender
from movierec.training import TrainConfig, resolve_device, train

RANKING_MAX_USERS = 10_000
"""Test users (drawn at random) whose top-10 a training run scores; ``movierec evaluate`` ranks them all."""
RANKING_BUDGET = 2 * 10**10
"""Users x items x ``score_cost`` a training run's ranking report may take. Scoring runs at
0.3-0.4G of those a second on the 2-core CPU for mlp and knn alike, so a minute: at ML-20M
size, 730 users for mlp (10,000 took 13 minutes), every test user of ml-latest-small."""


def ranking_users(n_items: int, score_cost: int) -> int:
    """How many test users a training run's ranking report scores against every item."""
    return max(100, min(RANKING_MAX_USERS, RANKING_BUDGET // max(1, n_items * score_cost)))


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


@dataclass(frozen=True)
class Parts:
    """The three disjoint parts of a run's data, over one id index."""

    fit: Ratings
    """What the model is trained on."""
    val: Ratings
    """Carved from the training data: validation curves and early stopping."""
    test: Ratings
    """Held out; scored once at the end."""


def split(ratings: Ratings, config: SplitConfig = SplitConfig(), test: Ratings | None = None) -> Parts:
    """Hold out a test part (or use ``test`` as given) and carve validation from the rest."""
    if test is None:
        train_rows, test_rows = split_rows(ratings, config.how, config.test_fraction, config.seed)
        train_part, test = ratings.take(train_rows), ratings.take(test_rows)
    else:
        train_part = ratings
    fit_pos, val_pos = random_split(len(train_part), config.val_fraction, config.seed + 1)
    return Parts(fit=train_part.take(fit_pos), val=train_part.take(val_pos), test=test)


def _seen_csr(parts: list[Ratings], n_users: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    users = np.concatenate([p.user_idx for p in parts])
    items = np.concatenate([p.item_idx for p in parts])
    ratings = np.concatenate([p.rating for p in parts])
    order = np.lexsort((items, users))
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
    return indptr, items[order].astype(np.int32), ratings[order].astype(np.float32)


def fit(
    fit_part: Ratings,
    val_part: Ratings | None = None,
    model: str = "mlp",
    *,
    train_config: TrainConfig | None = None,
    model_config: object | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[Recommender, list[dict]]:
    """Train the model called ``model`` on ``fit_part``; returns the recommender and its history."""
    spec = models.get(model)
    train_config = train_config or TrainConfig.for_model(spec)
    model_config = model_config or spec.config_type()
    if len(fit_part) == 0:
        raise ConfigError("there are no training ratings left after the split")
    global_mean = float(np.mean(fit_part.rating, dtype=np.float64))
    scale = fit_part.rating_scale()
    generator = torch.Generator().manual_seed(train_config.seed)
    net = spec.build(model_config, fit_part.n_users, fit_part.n_items, generator)
    history = train(
        net,
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
    )
    b_u, b_i = fit_biases(
        fit_part.user_idx,
        fit_part.item_idx,
        fit_part.rating.astype(np.float64) - global_mean,
        fit_part.n_users,
        fit_part.n_items,
    )
    seen = [fit_part] if val_part is None else [fit_part, val_part]
    indptr, items, seen_ratings = _seen_csr(seen, fit_part.n_users)
    recommender = Recommender(
        model=net.eval(),
        model_name=spec.name,
        model_config=model_config,
        index=fit_part.index,
        global_mean=global_mean,
        scale=scale,
        user_bias=b_u,
        item_bias=b_i,
        seen_indptr=indptr,
        seen_items=items,
        seen_ratings=seen_ratings,
        titles=fit_part.titles,
        info={"dataset": fit_part.name, "train_config": asdict(train_config)},
    )
    return recommender, history


def baseline_of(recommender: Recommender) -> Recommender:
    """The same recommender with its model swapped for the fallback biases (the baseline)."""
    spec = models.get("baseline")
    base = Baseline(recommender.index.n_users, recommender.index.n_items)
    with torch.no_grad():
        base.user_bias.copy_(torch.from_numpy(recommender.user_bias))
        base.item_bias.copy_(torch.from_numpy(recommender.item_bias))
    device = next(recommender.model.parameters()).device
    return replace(recommender, model=base.to(device), model_name="baseline", model_config=spec.config_type())


def run(
    ratings: Ratings,
    model: str,
    out: Path,
    *,
    split_config: SplitConfig = SplitConfig(),
    test: Ratings | None = None,
    train_overrides: dict | None = None,
    model_config: object | None = None,
    resume: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    extra_metrics: dict | None = None,
) -> dict:
    """Split, train, test once, and write ``out`` (model, metrics.json, loss.png) atomically.

    Checkpoints live in ``<out>.partial/`` until the run completes, so an interrupted or
    failed run leaves any earlier model in ``out`` untouched and can be resumed.

    Under torchrun every rank trains; only rank 0 tests and writes ``out``, and the
    others return just ``model``, ``dataset`` and ``history``. When torchrun restarts
    failed workers (``--max-restarts``), they resume from the checkpoint by themselves.
    """
    spec = models.get(model)
    train_config = TrainConfig.for_model(spec, **(train_overrides or {}))
    parts = split(ratings, split_config, test)
    checkpoints = out.with_name(out.name + ".partial")
    resume = resume or (distributed.elastic_restart() and (checkpoints / "checkpoint.json").exists())
    if resume:
        _check_resumable(checkpoints, spec.name, train_config)
    recommender, history = fit(
        parts.fit,
        parts.val,
        model,
        train_config=train_config,
        model_config=model_config,
        checkpoint_dir=checkpoints,
        resume=resume,
        on_epoch=on_epoch,
        progress=progress,
    )
    if not distributed.is_main():
        distributed.finish()  # waits for rank 0 to write the model (see the end)
        return {"model": spec.name, "dataset": ratings.name, "history": history}
    scores = evaluate(recommender, parts.test)
    base = evaluate(baseline_of(recommender), parts.test)
    # All items ranked for each user; users capped so a large run's report stays minutes, not hours.
    ranking = evaluate_ranking(
        recommender,
        parts.test,
        k=10,
        relevance=default_relevance(recommender.scale),
        max_users=ranking_users(recommender.index.n_items, recommender.model.score_cost),
        seed=split_config.seed,
    )
    metrics = {
        "model": spec.name,
        "dataset": ratings.name,
        "split": asdict(split_config) if test is None else {"how": "given", "test": parts.test.name},
        "n_train": len(parts.fit),
        "n_val": len(parts.val),
        "n_test": len(parts.test),
        "test_rmse": scores["rmse"],
        "test_mae": scores["mae"],
        "test_n_fallback": scores["n_fallback"],
        "baseline_rmse": base["rmse"],
        "baseline_mae": base["mae"],
        "ranking": ranking,
        "error_by_activity": error_by_activity(recommender, parts.test),
        "rating_distribution": rating_distribution(recommender, parts.test),
        "history": history,
        "train_seconds": sum(h["seconds"] for h in history),
        "device": str(resolve_device(train_config.device)),
        "train_config": asdict(train_config),
        **(extra_metrics or {}),
    }
    recommender.info = {**(recommender.info or {}), "split": metrics["split"], "metrics": _summary(metrics)}
    plot = loss_plot(history, f"{spec.name} on {ratings.name}")
    persist.save(
        recommender,
        out,
        extra_files={"metrics.json": json.dumps(metrics, indent=1).encode(), "loss.png": plot},
    )
    _remove_checkpoints(checkpoints)
    # Every rank leaves the process group together, once the model is written: a rank that
    # tore its end down while another was still running could abort the whole job.
    distributed.finish()
    return metrics


def _summary(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "history"}


def _check_resumable(checkpoints: Path, model: str, config: TrainConfig) -> None:
    meta_path = checkpoints / "checkpoint.json"
    if not meta_path.exists():
        raise ConfigError(f"--resume: no checkpoint in {checkpoints}; start the run without --resume")
    meta = json.loads(meta_path.read_text())
    if meta.get("model") != model:
        raise ConfigError(
            f"--resume: the checkpoint in {checkpoints} is of model {meta.get('model')!r}, not {model!r}; "
            "rerun with that --model or without --resume"
        )
    saved = meta["config"]
    # Everything but the epoch budget must match, or the resumed run is a different run.
    differing = [k for k, v in asdict(config).items() if k != "epochs" and saved.get(k) != v]
    if differing:
        raise ConfigError(
            f"--resume: the checkpoint in {checkpoints} was trained with different settings "
            f"({', '.join(differing)}); rerun with the same flags or without --resume"
        )


def _remove_checkpoints(checkpoints: Path) -> None:
    # The .tmp names are what a run killed in the middle of writing a checkpoint leaves.
    for name in ("checkpoint.safetensors", "checkpoint.json", "checkpoint.safetensors.tmp", "checkpoint.json.tmp"):
        (checkpoints / name).unlink(missing_ok=True)
    if checkpoints.exists() and not any(checkpoints.iterdir()):
        checkpoints.rmdir()
