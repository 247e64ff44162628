"""Commands for the core job: train, evaluate, recommend, models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from movierec import models
from movierec.cli.app import (
    DataOpt,
    DatasetOpt,
    EpochDisplay,
    JsonOpt,
    TestOpt,
    app,
    err,
    load_ratings,
    load_test,
    out,
    parse_columns,
)
from movierec.errors import ConfigError


@app.command()
def train(
    model: Annotated[str, typer.Option("--model", help="Model name; see `movierec models`.")] = "mlp",
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the model, metrics.json and loss.png.")] = Path(
        "runs/latest"
    ),
    dataset: DatasetOpt = None,
    data: DataOpt = None,
    test: TestOpt = None,
    split: Annotated[str, typer.Option(help="random, user (per-user hold-out) or time (latest ratings).")] = "random",
    test_fraction: Annotated[float, typer.Option(help="Share of ratings held out for the test.")] = 0.2,
    val_fraction: Annotated[float, typer.Option(help="Share of training ratings carved out for validation.")] = 0.05,
    epochs: Annotated[int | None, typer.Option(help="Override the model's number of epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Override the model's batch size.")] = None,
    lr: Annotated[float | None, typer.Option(help="Override the model's learning rate.")] = None,
    seed: Annotated[int, typer.Option(help="Seeds the split, initialisation and shuffling.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its last checkpoint.")] = False,
    synthetic: Annotated[str | None, typer.Option(help="Size of synthetic data as USERSxITEMSxRATINGS.")] = None,
    user_col: Annotated[str | None, typer.Option(help="User id column of a ratings file.")] = None,
    item_col: Annotated[str | None, typer.Option(help="Item id column of a ratings file.")] = None,
    rating_col: Annotated[str | None, typer.Option(help="Rating column of a ratings file.")] = None,
    time_col: Annotated[str | None, typer.Option(help="Timestamp column of a ratings file.")] = None,
    rating_range: Annotated[str | None, typer.Option(help="Allowed ratings LO,HI for a ratings file.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a model, test it once on held-out ratings, and save it with its metrics and loss plot."""
    from movierec import pipeline
    from movierec.data.splits import split_rows

    spec = models.get(model)
    columns = parse_columns(user_col, item_col, rating_col, time_col, rating_range)
    ratings, syn = load_ratings(dataset, data, columns, synthetic, seed, progress=not as_json)
    test_ratings = load_test(test, columns) if test is not None else None
    split_config = pipeline.SplitConfig(split, test_fraction, val_fraction, seed)
    extra: dict = {}
    if syn is not None:
        _, test_rows = split_rows(ratings, split, test_fraction, seed)
        extra = {"synthetic": True, "noise_floor": syn.noise_floor(test_rows)}  # type: ignore[attr-defined]
        if not as_json:
            err.print(
                f"[bold]synthetic data[/] ({ratings.name}): the best test RMSE any model can reach "
                f"here is {extra['noise_floor']:.4f}"
            )
    overrides = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "device": device}
    n_epochs = epochs or spec.training.get("epochs", 1)
    with EpochDisplay(n_epochs, quiet=as_json) as display:
        metrics = pipeline.run(
            ratings,
            model,
            out_dir,
            split_config=split_config,
            test=test_ratings,
            train_overrides=overrides,
            resume=resume,
            on_epoch=display.epoch,
            progress=display.progress,
            extra_metrics=extra,
        )
    if as_json:
        print(json.dumps(metrics))
        return
    table = Table(title=f"{metrics['model']} on {metrics['dataset']}")
    for col in ("ratings (train / val / test)", "test RMSE", "test MAE", "baseline RMSE", "train s"):
        table.add_column(col, justify="right")
    table.add_row(
        f"{metrics['n_train']:,} / {metrics['n_val']:,} / {metrics['n_test']:,}",
        f"{metrics['test_rmse']:.4f}",
        f"{metrics['test_mae']:.4f}",
        f"{metrics['baseline_rmse']:.4f}",
        f"{metrics['train_seconds']:.1f}",
    )
    out.print(table)
    if "noise_floor" in metrics:
        out.print(f"synthetic data: noise floor (best possible test RMSE) {metrics['noise_floor']:.4f}")
    out.print(f"saved to {out_dir}/ (model.safetensors, manifest.json, metrics.json, loss.png)")


@app.command()
def evaluate(
    model_dir: Annotated[Path, typer.Option("--model", help="A model directory written by `movierec train`.")],
    dataset: DatasetOpt = None,
    data: DataOpt = None,
    test: TestOpt = None,
    user_col: Annotated[str | None, typer.Option(help="User id column of a ratings file.")] = None,
    item_col: Annotated[str | None, typer.Option(help="Item id column of a ratings file.")] = None,
    rating_col: Annotated[str | None, typer.Option(help="Rating column of a ratings file.")] = None,
    time_col: Annotated[str | None, typer.Option(help="Timestamp column of a ratings file.")] = None,
    rating_range: Annotated[str | None, typer.Option(help="Allowed ratings LO,HI for a ratings file.")] = None,
    synthetic: Annotated[str | None, typer.Option(help="Size of synthetic data as USERSxITEMSxRATINGS.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-score a saved model: on a --test file, or on the held-out part of --data/--dataset split as in training."""
    from movierec import persist, pipeline
    from movierec.evaluate import evaluate as score

    recommender = persist.load(model_dir)
    columns = parse_columns(user_col, item_col, rating_col, time_col, rating_range)
    if test is not None:
        if dataset or data:
            raise ConfigError("give --test alone, or --data/--dataset to re-split as in training")
        part = load_test(test, columns)
    elif dataset or data:
        saved = (recommender.info or {}).get("split") or {}
        if saved.get("how") not in ("random", "user", "time"):
            raise ConfigError("this model was tested on a given --test file; evaluate it with --test PATH")
        # The training seed also seeded synthetic data, so the same log and split come back.
        ratings, _ = load_ratings(dataset, data, columns, synthetic, saved["seed"], progress=not as_json)
        part = pipeline.split(ratings, pipeline.SplitConfig(**saved)).test
    else:
        raise ConfigError("name the ratings to score: --test PATH, or --data PATH / --dataset NAME")
    result = {"model": recommender.model_name, "data": part.name, **score(recommender, part)}
    if as_json:
        print(json.dumps(result))
        return
    out.print(
        f"{result['model']} on {result['data']}: RMSE {result['rmse']:.4f}  MAE {result['mae']:.4f}  "
        f"({result['n']:,} ratings, {result['n_fallback']:,} by fallback)"
    )


@app.command()
def recommend(
    model_dir: Annotated[Path, typer.Option("--model", help="A model directory written by `movierec train`.")],
    user: Annotated[str, typer.Option("--user", help="The user's raw id, as in the ratings file.")],
    k: Annotated[int, typer.Option("-k", help="How many items.")] = 10,
    include_rated: Annotated[bool, typer.Option(help="Also list items the user rated in training.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Print a user's top-k items they have not rated, with titles and predicted ratings."""
    from movierec import persist

    if k < 1:
        raise ConfigError("-k must be at least 1")
    recommender = persist.load(model_dir)
    rows = recommender.recommend(user, k, exclude_seen=not include_rated)
    if as_json:
        print(json.dumps({"user_id": user, "items": rows}))
        return
    table = Table(title=f"top {k} for user {user} ({recommender.model_name})")
    table.add_column("#", justify="right")
    table.add_column("item", justify="right")
    table.add_column("title")
    table.add_column("predicted", justify="right")
    for rank, row in enumerate(rows, 1):
        table.add_row(str(rank), str(row["item_id"]), row["title"] or "", f"{row['score']:.2f}")
    out.print(table)


@app.command("models")
def list_models(as_json: JsonOpt = False) -> None:
    """List the models movierec can train."""
    if as_json:
        print(json.dumps({name: spec.summary for name, spec in models.MODELS.items()}))
        return
    for name, spec in models.MODELS.items():
        print(f"{name:<10} {spec.summary}")
