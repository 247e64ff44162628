"""The ``movierec`` command: thin commands over the package's functions.

User errors (bad data, bad flags, a missing model) print one clear line on stderr and
exit with code 2; ``--json`` prints one JSON object on stdout for scripts.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from movierec import models
from movierec.data.ratings import Ratings
from movierec.errors import ConfigError, MovierecError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Train, evaluate and serve rating-based recommenders.",
)
err = Console(stderr=True)
out = Console()

DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        help="A MovieLens release (ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m, ml-latest, ml-latest-small), "
        "downloaded once into the cache; or 'synthetic' (the default when no data is named).",
    ),
]
DataOpt = Annotated[
    Path | None, typer.Option("--data", help="A MovieLens zip or folder, or a ratings CSV/TSV/Parquet file.")
]
TestOpt = Annotated[
    Path | None,
    typer.Option("--test", help="Evaluate on this ratings file instead of splitting (e.g. ml-100k u1.test)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of tables.")]


@dataclass(frozen=True)
class Columns:
    """Column names and rating range for ratings files that are not MovieLens releases."""

    user_col: str | None
    item_col: str | None
    rating_col: str | None
    time_col: str | None
    rating_range: tuple[float, float] | None


def _columns(user_col, item_col, rating_col, time_col, rating_range) -> Columns:
    rng = None
    if rating_range:
        try:
            lo, hi = (float(x) for x in rating_range.split(","))
        except ValueError:
            raise ConfigError(f"--rating-range takes LO,HI (for example 1,10), got {rating_range!r}") from None
        rng = (lo, hi)
    return Columns(user_col, item_col, rating_col, time_col, rng)


def _synthetic_config(spec: str | None, seed: int):
    from movierec.data.synthetic import SyntheticConfig

    if not spec:
        return SyntheticConfig(seed=seed)
    try:
        n_users, n_items, n_ratings = (int(x) for x in spec.lower().split("x"))
    except ValueError:
        raise ConfigError(
            f"--synthetic takes USERSxITEMSxRATINGS (for example 3000x2000x150000), got {spec!r}"
        ) from None
    return SyntheticConfig(n_users=n_users, n_items=n_items, n_ratings=n_ratings, seed=seed)


def _load(
    dataset: str | None, data: Path | None, columns: Columns, synthetic: str | None, seed: int, progress: bool
) -> tuple[Ratings, object | None]:
    """The ratings a command works on, and the synthetic generator's record when synthetic."""
    if dataset and data:
        raise ConfigError("give --dataset or --data, not both")
    if data is None and dataset in (None, "synthetic"):
        from movierec.data.synthetic import generate

        syn = generate(_synthetic_config(synthetic, seed))
        return syn.ratings, syn
    from movierec.data.load import load

    ratings = load(
        data,
        dataset=dataset,
        user_col=columns.user_col,
        item_col=columns.item_col,
        rating_col=columns.rating_col,
        time_col=columns.time_col,
        rating_range=columns.rating_range,
        progress=progress,
    )
    return ratings, None


def _load_test(test: Path, columns: Columns) -> Ratings:
    from movierec.data.load import load

    return load(
        test,
        user_col=columns.user_col,
        item_col=columns.item_col,
        rating_col=columns.rating_col,
        time_col=columns.time_col,
        rating_range=columns.rating_range,
    )


class _EpochDisplay:
    """A progress bar per epoch, then a line with its train loss, validation RMSE and seconds."""

    def __init__(self, epochs: int, quiet: bool) -> None:
        self.epochs, self.quiet = epochs, quiet
        self.bar = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[total_epochs]}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=quiet,
        )
        self.task = None

    def __enter__(self) -> _EpochDisplay:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)  # type: ignore[arg-type]

    def progress(self, _kind: str, done: int, total: int) -> None:
        if self.task is None:
            self.task = self.bar.add_task("", total=total, epoch=1, total_epochs=self.epochs)
        self.bar.update(self.task, completed=done)

    def epoch(self, row: dict) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=0, epoch=row["epoch"] + 1)
        if self.quiet:
            return
        val = "-" if row["val_rmse"] is None else f"{row['val_rmse']:.4f}"
        self.bar.console.print(
            f"epoch {row['epoch']:>3}/{self.epochs}  train loss {row['train_loss']:.4f}  "
            f"val RMSE {val}  {row['seconds']:.1f} s"
        )


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
    columns = _columns(user_col, item_col, rating_col, time_col, rating_range)
    ratings, syn = _load(dataset, data, columns, synthetic, seed, progress=not as_json)
    test_ratings = _load_test(test, columns) if test is not None else None
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
    with _EpochDisplay(n_epochs, quiet=as_json) as display:
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
    as_json: JsonOpt = False,
) -> None:
    """Re-score a saved model: on a --test file, or on the held-out part of --data/--dataset split as in training."""
    from movierec import persist, pipeline
    from movierec.evaluate import evaluate as score

    recommender = persist.load(model_dir)
    columns = _columns(user_col, item_col, rating_col, time_col, rating_range)
    if test is not None:
        if dataset or data:
            raise ConfigError("give --test alone, or --data/--dataset to re-split as in training")
        part = _load_test(test, columns)
    elif dataset or data:
        ratings, _ = _load(dataset, data, columns, None, 0, progress=not as_json)
        saved = (recommender.info or {}).get("split") or {}
        if saved.get("how") not in ("random", "user", "time"):
            raise ConfigError("this model was tested on a given --test file; evaluate it with --test PATH")
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


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    try:
        app()
    except MovierecError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted; nothing was saved. Continue with the same command plus --resume.")
        sys.exit(130)


if __name__ == "__main__":
    main()
