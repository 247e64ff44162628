"""``movierec tune``: search a model's hyperparameters on the validation part, save the best for ``train``."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated

import typer

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
    load_ratings,
    out,
    parse_columns,
)
from movierec.errors import ConfigError


@app.command()
def tune(
    model: Annotated[
        str,
        typer.Option("--model", help="A rating model (tuned for RMSE) or a ranker (for NDCG@10); `movierec models`."),
    ] = "mf",
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the best configuration (JSON).")] = Path(
        "best.json"
    ),
    trials: Annotated[int, typer.Option(help="Configurations to try (the first is the model's defaults).")] = 30,
    timeout: Annotated[float | None, typer.Option(help="Stop starting new trials after this many seconds.")] = None,
    dataset: DatasetOpt = None,
    data: DataOpt = None,
    split: SplitOpt = "random",
    test_fraction: Annotated[float, typer.Option(help="Share of ratings held out for the test (never seen).")] = 0.2,
    val_fraction: Annotated[float, typer.Option(help="Share of training ratings the trials are scored on.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seeds the split, the search and every trial's training.")] = 0,
    device: DeviceOpt = "auto",
    synthetic: SyntheticOpt = None,
    user_col: UserColOpt = None,
    item_col: ItemColOpt = None,
    rating_col: RatingColOpt = None,
    time_col: TimeColOpt = None,
    rating_range: RatingRangeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search hyperparameters on the validation part (test ratings stay unseen); `train --config` uses the result."""
    from movierec import pipeline, tuning
    from movierec.cli.display import Display

    spec = tuning.check_tunable(model)  # an unknown or untunable name fails before any data is read
    tuning._optuna()  # and so does a missing Optuna
    tuning.check_out(out_path)  # and an --out that is someone else's file
    if trials < 1:  # before any data is read or a progress bar drawn
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"--timeout must be a number of seconds above 0, got {timeout}")
    metric = "NDCG@10" if spec.kind == "ranker" else "RMSE"
    split_config = pipeline.SplitConfig(split, test_fraction, val_fraction, seed)  # bad values fail before loading
    columns = parse_columns(user_col, item_col, rating_col, time_col, rating_range)
    ratings, _ = load_ratings(dataset, data, columns, synthetic, seed, progress=not as_json)
    tuning.check_data(ratings, model)
    parts = pipeline.split(ratings, split_config)
    with Display(quiet=as_json) as display, display.phase(f"tuning {model}: {trials} trials", total=trials) as phase:

        def on_trial(number: int, value: float | None, best: float, state: str) -> None:
            shown = "-" if value is None else f"{value:.4f}"
            phase.advance(number + 1)
            display.note(
                f"trial {number:>3}: val {metric} {shown}  ({state}{', defaults' if number == 0 else ''}); "
                f"best {best:.4f}"
            )

        tuned = tuning.tune(
            parts, model, trials=trials, seed=seed, device=device, timeout=timeout, on_trial=on_trial, progress=display
        )
    tuned = replace(tuned, data=ratings.name, split=asdict(split_config))
    tuning.save(tuned, out_path)
    if as_json:
        print(json.dumps(asdict(tuned)))
        return
    gain = abs(tuned.value - tuned.default_value)
    out.print(
        f"best val {metric} {tuned.value:.4f} (defaults {tuned.default_value:.4f}, {gain:.4f} better) "
        f"after {tuned.trials} trials"
    )
    out.print(f"model config: {json.dumps(tuned.model_config)}")
    if tuned.train:
        out.print(f"training: {json.dumps(tuned.train)}")
    out.print(f"saved to {out_path}; train with it: movierec train --config {out_path} [data flags]")
