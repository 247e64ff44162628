"""Commands for the core job: train, evaluate, models (the lists' commands are in ``cli.lists``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from movierec.cli.common import (
    DataOpt,
    DatasetOpt,
    DeviceOpt,
    ItemColOpt,
    JsonOpt,
    RatingColOpt,
    RatingRangeOpt,
    SplitOpt,
    SyntheticOpt,
    TestOpt,
    TimeColOpt,
    UserColOpt,
    app,
    check_k,
    err,
    load_ratings,
    load_test,
    out,
    parse_columns,
)
from movierec.errors import ConfigError

DEFAULT_RATER = "blend"
"""The rating model ``train`` fits when none is named: the most accurate, whose predicted
ratings also order the best lists (bench/ranking.py); ``--model mlp`` is the notebook's."""


@app.command()
def train(
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Rating model (default blend, the most accurate; mlp is the notebook's): `movierec models`.",
        ),
    ] = None,
    ranker: Annotated[
        str,
        typer.Option(
            help="Ranking model that orders the lists: auto (ease, or ials for large catalogues), ease, ials, popular."
        ),
    ] = "auto",
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the model, metrics.json and loss.png.")] = Path(
        "runs/latest"
    ),
    config: Annotated[
        Path | None, typer.Option("--config", help="A configuration written by `movierec tune` (model and settings).")
    ] = None,
    dataset: DatasetOpt = None,
    data: DataOpt = None,
    test: TestOpt = None,
    split: SplitOpt = "random",
    test_fraction: Annotated[float, typer.Option(help="Share of ratings held out for the test.")] = 0.2,
    val_fraction: Annotated[float, typer.Option(help="Share of training ratings carved out for validation.")] = 0.05,
    epochs: Annotated[int | None, typer.Option(help="Override the rating model's number of epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Override the rating model's batch size.")] = None,
    lr: Annotated[float | None, typer.Option(help="Override the rating model's learning rate.")] = None,
    seed: Annotated[int, typer.Option(help="Seeds the split, initialisation and shuffling.")] = 0,
    device: DeviceOpt = "auto",
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its last checkpoint.")] = False,
    synthetic: SyntheticOpt = None,
    user_col: UserColOpt = None,
    item_col: ItemColOpt = None,
    rating_col: RatingColOpt = None,
    time_col: TimeColOpt = None,
    rating_range: RatingRangeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a recommender (a ranker for the lists, a rating model for the ratings), test it once, and save it."""
    from movierec import distributed, models, pipeline
    from movierec.cli.display import Display
    from movierec.plan import check_ranker, rater_spec

    model_config: object | None = None
    ranker_config: object | None = None
    tuned_train: dict[str, Any] = {}
    if config is not None:
        from movierec.tuning import load_config

        tuned_model, tuned_config, tuned_train = load_config(config)
        if models.get(tuned_model).kind == "ranker":
            if ranker not in ("auto", tuned_model):
                raise ConfigError(f"--ranker {ranker} differs from the ranker {tuned_model!r} tuned in {config}")
            ranker, ranker_config = tuned_model, tuned_config
        else:
            if model is not None and model != tuned_model:
                raise ConfigError(f"--model {model} differs from the model {tuned_model!r} tuned in {config}; drop one")
            model, model_config = tuned_model, tuned_config
    if model is not None:
        chosen = rater_spec(model)  # a bad name fails before any data is read
        if chosen.one_pass and (epochs is not None or batch_size is not None or lr is not None):
            raise ConfigError(
                f"{model} is fitted in one pass (closed form), so --epochs, --batch-size and --lr do not apply to it"
            )
        if chosen.sweeps is not None and (batch_size is not None or lr is not None):
            raise ConfigError(
                f"{model} is fitted by its own sweeps, not by gradient steps, so --batch-size and --lr do not apply "
                "to it (--epochs sets its sweeps)"
            )
    check_ranker(ranker)
    quiet = as_json or not distributed.is_main()  # under torchrun, rank 0 alone reports
    split_config = pipeline.SplitConfig(split, test_fraction, val_fraction, seed)  # bad values fail before loading
    columns = parse_columns(user_col, item_col, rating_col, time_col, rating_range)
    display = Display(quiet=quiet)  # the run's wall time counts from here, loading included
    with display.phase("loading the ratings", key="load"):  # (drawn by the download's own bar, if any)
        ratings, syn = load_ratings(dataset, data, columns, synthetic, seed, progress=not quiet)
    test_ratings = load_test(test, columns) if test is not None else None
    if ratings.implicit:
        if model is not None:
            raise ConfigError(f"{ratings.name} has no rating column, so --model (a rating model) does not apply")
        if not quiet:
            err.print(f"{ratings.name} has no ratings: training a ranker only; RMSE and MAE do not apply")
    else:
        model = model or DEFAULT_RATER
    flags = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "device": device}
    # The tuned settings first, then any flag given on the command line.
    overrides = {**tuned_train, **{k: v for k, v in flags.items() if v is not None}}
    with display:
        metrics = pipeline.run(
            ratings,
            model,
            out_dir,
            ranker=ranker,
            split_config=split_config,
            test=test_ratings,
            train_overrides=overrides,
            model_config=model_config,
            ranker_config=ranker_config,
            resume=resume,
            progress=display,
            truth=syn,  # type: ignore[arg-type]
        )
    if not distributed.is_main():
        return
    if as_json:
        print(json.dumps(metrics))
        return
    title = f"{metrics['ranker']} lists, {metrics['model'] or 'no'} ratings, on {metrics['dataset']}"
    table = Table(title=title)
    ranking = metrics["ranking"]
    columns_shown = ["ratings (train / val / test)"]
    cells = [f"{metrics['n_train']:,} / {metrics['n_val']:,} / {metrics['n_test']:,}"]
    if "test_rmse" in metrics:
        columns_shown += ["test RMSE", "test MAE", "baseline RMSE"]
        cells += [f"{metrics['test_rmse']:.4f}", f"{metrics['test_mae']:.4f}", f"{metrics['baseline_rmse']:.4f}"]
    columns_shown += [f"NDCG@{ranking['k']}", "popular's NDCG", f"recall@{ranking['k']}", "run s"]
    cells += [
        f"{ranking['ndcg']:.4f}",
        f"{metrics['ranking_popular']['ndcg']:.4f}",
        f"{ranking['recall']:.4f}",
        f"{metrics['wall_seconds']:.1f}",  # the whole run; metrics.json has each phase's
    ]
    for col in columns_shown:
        table.add_column(col, justify="right")
    table.add_row(*cells)
    out.print(table)
    if "test_rmse_without_sittings" in metrics:
        out.print(
            f"test RMSE {metrics['test_rmse']:.4f} with the sitting shifts, "
            f"{metrics['test_rmse_without_sittings']:.4f} from the rater alone (what a rating with no time gets)"
        )
    if "noise_floor" in metrics:
        out.print(
            f"synthetic data: noise floor (best possible test RMSE) {metrics['noise_floor']:.4f}; "
            f"oracle list NDCG@10 {metrics['oracle_ndcg']:.4f}"
        )
    out.print(f"saved to {out_dir}/ (model.safetensors, manifest.json, metrics.json, loss.png)")


@app.command()
def evaluate(
    model_dir: Annotated[Path, typer.Option("--model", help="A model directory written by `movierec train`.")],
    dataset: DatasetOpt = None,
    data: DataOpt = None,
    test: TestOpt = None,
    user_col: UserColOpt = None,
    item_col: ItemColOpt = None,
    rating_col: RatingColOpt = None,
    time_col: TimeColOpt = None,
    rating_range: RatingRangeOpt = None,
    synthetic: SyntheticOpt = None,
    k: Annotated[int, typer.Option("-k", help="Length of the ranked lists scored by the ranking metrics.")] = 10,
    relevance: Annotated[
        float | None, typer.Option(help="A test rating >= this makes the item relevant (default 4.0 on 5-star scales).")
    ] = None,
    max_users: Annotated[
        int | None, typer.Option(help="Rank this many test users, drawn at random (default: all of them).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-score a saved model: on a --test file, or on the held-out part of --data/--dataset split as in training.

    Reports RMSE and MAE, and ranking metrics at k (precision, recall, NDCG, MAP, hit rate,
    coverage): each test user's items are ranked over every item they did not rate in training.
    """
    from movierec import persist, pipeline, provenance
    from movierec.cli.display import Display
    from movierec.evaluation import default_relevance, evaluate_ranking
    from movierec.evaluation import evaluate as score

    check_k(k)
    if max_users is not None and max_users < 1:
        raise ConfigError(f"--max-users must be at least 1, got {max_users}")
    if relevance is not None and not math.isfinite(relevance):
        raise ConfigError(f"--relevance must be a number on the rating scale, got {relevance}")

    display = Display(quiet=as_json)
    with display, display.phase(f"loading the model in {model_dir}"):
        recommender = persist.load(model_dir)
    columns = parse_columns(user_col, item_col, rating_col, time_col, rating_range)
    if test is not None:
        if dataset or data:
            raise ConfigError("give --test alone, or --data/--dataset to re-split as in training")
        part = load_test(test, columns)
        note = provenance.check_test(recommender, part)
        if note and not as_json:
            err.print(note)
    elif dataset or data or synthetic:  # --synthetic SIZE alone: synthetic data, as train takes it
        saved = (recommender.info or {}).get("split") or {}
        if saved.get("how") not in ("random", "user", "time"):
            raise ConfigError("this model was tested on a given --test file; evaluate it with --test PATH")
        # The training seed also seeded synthetic data, so the same log and split come back.
        ratings, _ = load_ratings(dataset, data, columns, synthetic, saved["seed"], progress=not as_json)
        parts = pipeline.split(ratings, pipeline.SplitConfig(**saved))
        provenance.check_same_training(recommender, parts.fit, parts.val)
        part = parts.test
    else:
        raise ConfigError("name the ratings to score: --test PATH, or --data PATH / --dataset NAME / --synthetic SIZE")
    lo, hi = recommender.scale
    if not part.implicit and len(part) and (float(part.rating.min()) < lo or float(part.rating.max()) > hi):
        raise ConfigError(
            f"{part.name}: ratings run {float(part.rating.min()):g}..{float(part.rating.max()):g}, outside the "
            f"model's scale {lo:g}..{hi:g}; score it on ratings of the scale it was trained on"
        )
    result: dict[str, Any] = {
        "model": recommender.rater_name,
        "ranker": recommender.ranker_name,
        "data": part.name,
    }
    default = 1.0 if part.implicit else default_relevance(recommender.scale)
    threshold = relevance if relevance is not None else default
    with Display(quiet=as_json) as display:
        if recommender.predicts_ratings and not part.implicit:
            with display.phase(f"predicting {len(part):,} ratings"):
                result.update(score(recommender, part))
        with display.phase(f"ranking every item for the test users (top {k})"):
            ranking = evaluate_ranking(recommender, part, k=k, relevance=threshold, max_users=max_users)
    result["ranking"] = ranking
    if as_json:
        print(json.dumps(result))
        return
    if "rmse" in result:
        out.print(
            f"{result['model']} on {result['data']}: RMSE {result['rmse']:.4f}  MAE {result['mae']:.4f}  "
            f"({result['n']:,} ratings, {result['n_fallback']:,} by fallback)"
        )
    else:
        out.print(f"{result['data']}: no ratings to predict, so no RMSE or MAE; lists only")
    out.print(f"lists by {result['ranker']}, ordered with {result['model'] or 'no'} predicted ratings:")
    out.print(
        f"top {k} (relevant: rated >= {threshold:g}; {ranking['n_users']:,} users, all unrated items ranked): "
        f"precision {ranking['precision']:.4f}  recall {ranking['recall']:.4f}  NDCG {ranking['ndcg']:.4f}  "
        f"MAP {ranking['map']:.4f}  hit rate {ranking['hit_rate']:.4f}  coverage {ranking['coverage']:.4f}"
    )


@app.command("models")
def list_models(as_json: JsonOpt = False) -> None:
    """List the models movierec can train."""
    from movierec import models

    if as_json:
        print(json.dumps({name: spec.summary for name, spec in models.MODELS.items()}))
        return
    for name, spec in models.MODELS.items():
        print(f"{name:<10} {spec.summary}")
