"""Accuracy of every movierec model, and of its peers, on the same splits: one table.

Each model is trained on the fit part of movierec's split (random 80/20 with the seed,
then 5% of the training part for validation with seed + 1), with its default settings,
and tested once on the held-out 20%. Rows: dataset, split and seed, model, test RMSE,
MAE, training seconds, the fit's peak resident memory (the data already loaded, not the
generator's temporaries: ``machine.reset_peak``); synthetic data adds the generator's
noise floor (the test RMSE of its own factors, users' and items') and its user floor (the
items' true factors with each user learned from their training ratings: about the best a
model that must learn the users can reach; ``Synthetic.user_floor``).

Peers, on the same split: Surprise's BaselineOnly, SVD, SVD++ and KNNBaseline (trained on
fit + validation, as Surprise has no early stopping) and the original Keras notebook.
Where ``surprise`` / ``tensorflow`` import they are run here (``/work/tfenv/bin/python``
has both and movierec); otherwise their saved results for the same data and seed are read
from bench/results/ (written by bench/peers.py and bench/keras_notebook.py).

    .venv/bin/python bench/accuracy.py                       # ml-latest-small, seeds 0-2, + synthetic
    .venv/bin/python bench/accuracy.py --data ~/ml-1m --seeds 0 --no-synthetic
    /work/tfenv/bin/python bench/accuracy.py --peers run     # peers trained here too

Nothing in the package or the tests imports this file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from machine import peak_mb, reset_peak  # bench/machine.py

from movierec import fitting, models, pipeline
from movierec.data.load import load
from movierec.data.splits import split_rows
from movierec.data.synthetic import SyntheticConfig, generate
from movierec.evaluation import evaluate
from movierec.training import TrainConfig

BENCH = Path(__file__).resolve().parent
DEFAULT_DATA = BENCH.parent.parent / "shared" / "data" / "ml-latest-small"
RESULTS = BENCH / "results"
DEFAULT_SYNTHETIC = ("3000,2000,150000,0.8", "3000,2000,150000,0.5", "20000,8000,1000000,0.8")
PRESETS = {
    # ML-20M's shape, the generator's defaults but for a stronger taste signal (sd 1.5 stars
    # instead of 0.8) spread evenly over its 8 dimensions (decay 0, the generator's default
    # when this set was made): tests whether the defaults find a strong signal at 20M
    # ratings. Generating it takes about 70 s and 3.2 GB.
    "ml20m-strong": "138493,26744,20000000,0.8,1.5,8,0",
}
SURPRISE = ("BaselineOnly", "SVD", "SVDpp", "KNNBaseline")


def machine() -> str:
    cpu = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch

    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, Python {platform.python_version()}"


def datasets(args: argparse.Namespace):
    """(name, ratings, synthetic record or None) for every dataset asked for."""
    paths = args.data if args.data is not None else ([DEFAULT_DATA] if DEFAULT_DATA.exists() else [])
    if args.no_real:
        paths = []
    for path in paths:
        ratings = load(Path(path).expanduser())
        yield ratings.name, ratings, None
    if not args.no_synthetic:
        for spec in args.synthetic or DEFAULT_SYNTHETIC:
            n_users, n_items, n_ratings, noise, *rest = PRESETS.get(spec, spec).split(",")
            shape = {"signal": float(rest[0])} if rest else {}
            if len(rest) > 1:
                shape["rank"] = int(rest[1])
            if len(rest) > 2:
                shape["decay"] = float(rest[2])
            cfg = SyntheticConfig(int(n_users), int(n_items), int(n_ratings), noise=float(noise), **shape)
            syn = generate(cfg)
            yield syn.ratings.name, syn.ratings, syn


def movierec_rows(ratings, parts, name: str, seed: int, device: str) -> dict:
    spec = models.get(name)
    config = TrainConfig.for_model(spec, parts.n_train, seed=seed, device=device)
    # The fit's own peak: the data is resident already (as in `movierec train`), a
    # generator's larger temporaries are not counted.
    whole_process = not reset_peak()
    started = time.perf_counter()
    # The popular list: this table is about ratings, and a ranker's fit would only add to the seconds.
    recommender, report = fitting.fit(parts.fit, parts.val, name, ranker="popular", train_config=config)
    history = list(report.history)
    seconds = time.perf_counter() - started
    peak_gb = peak_mb() / 1024
    scores = evaluate(recommender, parts.test)
    chose = (recommender.info or {}).get("rater_choice")
    row = {"model": name, "rmse": scores["rmse"], "mae": scores["mae"], "seconds": seconds, "epochs": len(history),
           "peak_gb": peak_gb, "peak_covers": "the whole process" if whole_process else "the fit",
           **({"chose": chose} if chose else {})}  # fmt: skip
    if recommender.sittings is not None:
        # The peers know nothing of the ratings' times: the rater alone, beside them.
        alone = evaluate(replace(recommender, sittings=None), parts.test)
        row.update(rmse_without_sittings=alone["rmse"], mae_without_sittings=alone["mae"],
                   sittings=recommender.info["sittings_choice"])  # fmt: skip
    return row


def surprise_rows(ratings, parts, seed: int, names: tuple[str, ...] = SURPRISE) -> list[dict]:
    import pandas as pd
    import surprise

    users = np.concatenate([parts.fit.user_idx, parts.val.user_idx])
    items = np.concatenate([parts.fit.item_idx, parts.val.item_idx])
    rating = np.concatenate([parts.fit.rating, parts.val.rating])
    scale = ratings.rating_scale()
    frame = pd.DataFrame({"u": users, "i": items, "r": rating})
    trainset = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=scale)).build_full_trainset()
    test = parts.test
    testset = list(zip(test.user_idx.tolist(), test.item_idx.tolist(), test.rating.tolist(), strict=True))
    rows = []
    for name in names:
        if name == "KNNBaseline":
            algo = surprise.KNNBaseline(sim_options={"name": "pearson_baseline", "user_based": False}, verbose=False)
        elif name == "BaselineOnly":
            algo = surprise.BaselineOnly(verbose=False)
        else:
            algo = getattr(surprise, name)(random_state=seed)
        started = time.perf_counter()
        algo.fit(trainset)
        seconds = time.perf_counter() - started
        pred = np.clip([p.est for p in algo.test(testset)], *scale)
        rows.append({"model": f"Surprise {name}", **_scores(pred, parts.test.rating), "seconds": seconds})
    return rows


def keras_rows(ratings, parts, seed: int) -> list[dict]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(BENCH))
    import keras
    from keras_notebook import build_model, fit_keras

    keras.utils.set_random_seed(seed)
    model = build_model(ratings.n_users, ratings.n_items)
    mu = float(parts.fit.rating.mean())
    started = time.perf_counter()
    x = [parts.fit.user_idx[:, None], parts.fit.item_idx[:, None]]
    fit_keras(model, x, parts.fit.rating - mu, 25, lambda *a: None)
    seconds = time.perf_counter() - started
    test_x = [parts.test.user_idx[:, None], parts.test.item_idx[:, None]]
    pred = np.clip(model.predict(test_x, batch_size=1 << 16, verbose=0)[:, 0] + mu, *ratings.rating_scale())
    return [{"model": "Keras notebook", **_scores(pred, parts.test.rating), "seconds": seconds}]


def saved_peer_rows(data_name: str, seed: int) -> list[dict]:
    """Peers' results for this data and seed as bench/peers.py and bench/keras_notebook.py saved them."""
    rows = []
    peers = RESULTS / f"peers-{data_name}-seed{seed}.json"
    if peers.exists():
        for r in json.loads(peers.read_text())["results"]:
            rows.append({"model": f"Surprise {r['model']}", "rmse": r["rmse"], "mae": r["mae"],
                         "seconds": r["train_seconds"], "saved": peers.name})  # fmt: skip
    keras = RESULTS / f"keras_notebook-{data_name}-seed{seed}.json"
    if keras.exists():
        info = json.loads(keras.read_text())
        seconds = sum(e["seconds"] for e in info["epochs"])
        rows.append({"model": "Keras notebook", "rmse": info["test"]["rmse"], "mae": info["test"]["mae"],
                     "seconds": seconds, "saved": keras.name})  # fmt: skip
    return rows


def _scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    err = np.asarray(pred, dtype=np.float64) - truth
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", help="a MovieLens release or ratings file (repeatable)")
    parser.add_argument("--synthetic", action="append", metavar="USERS,ITEMS,RATINGS,NOISE[,SIGNAL[,RANK[,DECAY]]]",
                        help=f"(repeatable) or a preset: {', '.join(PRESETS)}")  # fmt: skip
    parser.add_argument("--no-synthetic", action="store_true", help="real data only")
    parser.add_argument("--no-real", action="store_true", help="synthetic data only")
    parser.add_argument("--seeds", default="0,1,2", help="split seeds, comma-separated")
    raters = [name for name, spec in models.MODELS.items() if spec.kind == "rater"]
    parser.add_argument("--models", default=",".join(raters), help="movierec rating models, comma-separated")
    parser.add_argument("--peers", choices=("auto", "run", "surprise", "saved", "none"), default="auto",
                        help="auto: run Surprise/Keras where they import, else read their saved results; "
                        "surprise: run Surprise alone")  # fmt: skip
    parser.add_argument("--surprise-models", default=",".join(SURPRISE),
                        help="Surprise models to run (SVD++ and KNNBaseline take hours at 20M ratings)")  # fmt: skip
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", metavar="OUT", help="also write every row to this JSON file")
    args = parser.parse_args()

    seeds = [int(s) for s in args.seeds.split(",")]
    names = [n for n in args.models.split(",") if n]
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at start")
    print("split: random 80/20 by seed, validation 5% of train by seed + 1; seconds include other users' load")
    header = (f"| {'dataset':<44} | split  | seed | {'model':<24} | test RMSE |   MAE  | train s | peak GB "
              "| floor  | user floor |")  # fmt: skip
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    all_rows = []
    for data_name, ratings, syn in datasets(args):
        for seed in seeds:
            parts = pipeline.split(ratings, pipeline.SplitConfig(seed=seed))
            floor = user_floor = None
            if syn is not None:
                train_rows, test_rows = split_rows(ratings, "random", 0.2, seed)
                floor, user_floor = syn.noise_floor(test_rows), syn.user_floor(train_rows, test_rows)
            rows = [movierec_rows(ratings, parts, name, seed, args.device) for name in names]
            run_surprise = args.peers in ("run", "surprise") or (args.peers == "auto" and _importable("surprise"))
            run_keras = args.peers == "run" or (args.peers == "auto" and _importable("tensorflow"))
            if run_surprise:
                rows += surprise_rows(ratings, parts, seed, tuple(args.surprise_models.split(",")))
            if run_keras:
                rows += keras_rows(ratings, parts, seed)
            if args.peers in ("auto", "saved"):
                saved = saved_peer_rows(data_name, seed)
                rows += [r for r in saved if not (run_surprise and "Surprise" in r["model"])
                         and not (run_keras and "Keras" in r["model"])]  # fmt: skip
            for row in rows:
                row.update(dataset=data_name, split="random", seed=seed, noise_floor=floor, user_floor=user_floor)
                fl = "" if floor is None else f"{floor:.4f} | {user_floor:.4f}    "
                mark = " *" if "saved" in row else ""
                peak = f"{row['peak_gb']:>7.2f}" if "peak_gb" in row else " " * 7
                print(f"| {data_name:<44} | random | {seed:>4} | {row['model'] + mark:<24} | {row['rmse']:>9.4f} | "
                      f"{row['mae']:.4f} | {row['seconds']:>7.1f} | {peak} | {fl:<19} |", flush=True)  # fmt: skip
                if "chose" in row:
                    print(f"|   {row['chose']}")
                if "sittings" in row:
                    print(f"|   {row['sittings']}; without them: test RMSE {row['rmse_without_sittings']:.4f}, "
                          f"MAE {row['mae_without_sittings']:.4f}")  # fmt: skip
            all_rows += rows
    if any("saved" in r for r in all_rows):
        print("* read from bench/results/ (bench/peers.py, bench/keras_notebook.py), same split; not rerun here")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"machine": machine(), "rows": all_rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
