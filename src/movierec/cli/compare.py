"""``movierec compare``: several models on one split, side by side."""

from __future__ import annotations

import json
from typing import Annotated

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
    TimeColOpt,
    UserColOpt,
    app,
    err,
    load_ratings,
    out,
    parse_columns,
)
from movierec.errors import ConfigError


@app.command()
def compare(
    model_names: Annotated[
        str, typer.Option("--models", help="Comma-separated rating models and rankers; see `movierec models`.")
    ] = "baseline,mlp,als,ease,ials,popular",
    dataset: DatasetOpt = None,
    data: DataOpt = None,
    split: SplitOpt = "random",
    test_fraction: Annotated[float, typer.Option(help="Share of ratings held out for the test.")] = 0.2,
    val_fraction: Annotated[float, typer.Option(help="Share of training ratings carved out for validation.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seeds the split and every model's training.")] = 0,
    device: DeviceOpt = "auto",
    synthetic: SyntheticOpt = None,
    user_col: UserColOpt = None,
    item_col: ItemColOpt = None,
    rating_col: RatingColOpt = None,
    time_col: TimeColOpt = None,
    rating_range: RatingRangeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train several models on one split and print test RMSE, MAE, NDCG@10, recall@10 and seconds side by side.

    Rating models are scored on ratings, and on lists ordered by their predicted ratings;
    rankers on their own lists. `movierec train` pairs a ranker (the lists) with a rating model.
    """
    from movierec import models, pipeline
    from movierec.cli.display import Display
    from movierec.compare import compare as run

    names = [n.strip() for n in model_names.split(",") if n.strip()]
    if not names:
        raise ConfigError(
            "--models names no model; give one or more, e.g. --models baseline,ease (see `movierec models`)"
        )
    for name in names:
        models.get(name)  # a typo fails before any data is read
    split_config = pipeline.SplitConfig(split, test_fraction, val_fraction, seed)  # bad values fail before loading
    columns = parse_columns(user_col, item_col, rating_col, time_col, rating_range)
    ratings, _ = load_ratings(dataset, data, columns, synthetic, seed, progress=not as_json)
    if ratings.implicit:
        raters = [n for n in names if models.get(n).kind == "rater"]
        if raters:
            if not as_json:
                err.print(f"{ratings.name} has no ratings: leaving out the rating models {', '.join(raters)}")
            names = [n for n in names if n not in raters]
            if not names:
                raise ConfigError(
                    f"{ratings.name} has no ratings, so rating models cannot be compared on it; "
                    "name rankers too, e.g. --models ease,ials,popular"
                )
    parts = pipeline.split(ratings, split_config)

    with Display(quiet=as_json) as display:
        rows = run(parts, names, seed=seed, device=device, progress=display)
    if as_json:
        print(json.dumps({"data": ratings.name, "split": parts.fit.name, "models": rows}))
        return
    table = Table(title=f"{ratings.name}: {len(parts.fit):,} fit / {len(parts.val):,} val / {len(parts.test):,} test")
    shifted = any(r["rmse_without_sittings"] is not None for r in rows)
    headers = ["model", "kind", "test RMSE", *(["RMSE alone"] if shifted else []), "test MAE"]
    for col in (*headers, "NDCG@10", "recall@10", "train s"):
        table.add_column(col, justify="left" if col in ("model", "kind") else "right")
    best = max(r["ndcg"] for r in rows)
    for r in rows:
        # A rater with no shifts has the same figure alone; a ranker has none.
        alone = [_figure(r["rmse"] if r["rmse_without_sittings"] is None else r["rmse_without_sittings"])]
        table.add_row(
            r["model"],
            r["kind"],
            _figure(r["rmse"]),
            *(alone if shifted else []),
            _figure(r["mae"]),
            f"{r['ndcg']:.4f}" + (" *" if r["ndcg"] == best else ""),
            f"{r['recall']:.4f}",
            f"{r['seconds']:.1f}",
        )
    out.print(table)
    if shifted:
        out.print(
            "test RMSE includes each rating sitting's shift, as `movierec train` reports it; RMSE alone is "
            "the rating model's without them (what a rating with no time gets, and what peers compare with)."
        )
    out.print(
        "rating models' NDCG is of lists ordered by their predicted ratings; rankers' of their own lists. "
        "`movierec train` lists by a ranker and shows each item's predicted rating from a rating model."
    )


def _figure(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"
