"""Surprise's classic models on movierec's split: the peers movierec's models must match.

BaselineOnly, SVD, SVD++ and item-based KNNBaseline (pearson_baseline similarity), all
with Surprise's default settings (random_state set to the seed). Surprise has no early
stopping, so each is trained on all the training rows (fit + validation) and tested on
the same test rows as bench/keras_notebook.py and movierec's trainer. Predictions are
clipped to the rating scale, as Surprise does by default.

Needs scikit-surprise and pandas, which movierec does not depend on; run it from the
TensorFlow venv (see bench/README.md). Nothing in the package or tests imports this file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from keras_notebook import add_data_args, load_data, machine, protocol_rows, scores

MODELS = ("BaselineOnly", "SVD", "SVDpp", "KNNBaseline")


def make(name: str, seed: int):
    import surprise

    if name == "KNNBaseline":
        return surprise.KNNBaseline(sim_options={"name": "pearson_baseline", "user_based": False}, verbose=False)
    if name == "BaselineOnly":
        return surprise.BaselineOnly(verbose=False)
    return getattr(surprise, name)(random_state=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_args(parser)
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {', '.join(MODELS)}")
    args = parser.parse_args()

    import pandas as pd
    import surprise

    ratings, synth = load_data(args)
    fit, val, test = protocol_rows(ratings, args.seed)
    train = np.sort(np.concatenate([fit, val]))
    scale = ratings.rating_scale()
    df = pd.DataFrame({"u": ratings.user_idx[train], "i": ratings.item_idx[train], "r": ratings.rating[train]})
    trainset = surprise.Dataset.load_from_df(df, surprise.Reader(rating_scale=scale)).build_full_trainset()
    cols = (ratings.user_idx[test], ratings.item_idx[test], ratings.rating[test])
    testset = list(zip(*(c.tolist() for c in cols), strict=True))

    info = {
        "script": "bench/peers.py",
        "surprise": surprise.__version__,
        "machine": machine(),
        "data": ratings.name,
        "n_ratings": len(ratings),
        "split": {"how": "random", "test_fraction": 0.2, "seed": args.seed},
        "trained_on": "all train rows (fit + val): Surprise has no early stopping",
        "n_train": len(train),
        "n_test": len(test),
        "results": [],
    }
    m = info["machine"]
    print(f"Surprise {info['surprise']}; machine: {m['cpu']}, {m['cores']} cores")
    print(f"trained on all {len(train)} train rows (fit + val; Surprise has no early stopping), tested on {len(test)}")
    print(f"{'dataset':<40} {'split':<6} {'seed':>4} {'model':<13} {'RMSE':>7} {'MAE':>7} {'train_s':>8}")
    for name in args.models.split(","):
        algo = make(name, args.seed)
        t0 = time.perf_counter()
        algo.fit(trainset)
        seconds = time.perf_counter() - t0
        pred = np.array([p.est for p in algo.test(testset)])
        s = scores(pred, ratings.rating[test], scale)
        info["results"].append({"model": name, "rmse": s["rmse"], "mae": s["mae"], "train_seconds": seconds})
        print(f"{ratings.name:<40} {'random':<6} {args.seed:>4} {name:<13} {s['rmse']:>7.4f} {s['mae']:>7.4f} "
              f"{seconds:>8.1f}", flush=True)  # fmt: skip
    if synth is not None:
        info["test_noise_floor"] = synth.noise_floor(test)
        print(f"synthetic noise floor on the test rows: RMSE {info['test_noise_floor']:.4f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(info, indent=2) + "\n")


if __name__ == "__main__":
    main()
