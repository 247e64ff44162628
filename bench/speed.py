"""Speed and memory at ML-20M scale: load, seconds per epoch per model, the ranker, peak memory, top-10 for all.

Uses the synthetic generator at ML-20M's shape (138,493 users, 26,744 items, 20,000,263
ratings), written once as a MovieLens-format CSV. Each measurement runs in a fresh
process, so peak memory (ru_maxrss) is that measurement's own. Where a Python with
TensorFlow is given (--keras-python), the Keras notebook model is timed in the same run.

    .venv/bin/python bench/speed.py                                # everything, full size
    .venv/bin/python bench/speed.py --ratings 2000000 --models mlp  # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import peak_mb, summary  # bench/machine.py: the same description in every script

from movierec.models import get

HERE = Path(__file__).resolve().parent


def write_csv(path: Path, users: int, items: int, ratings: int) -> None:
    """The synthetic log as a MovieLens ratings.csv (not timed)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from movierec.data.synthetic import SyntheticConfig, generate

    r = generate(SyntheticConfig(n_users=users, n_items=items, n_ratings=ratings)).ratings
    table = pa.table(
        {
            "userId": r.index.user_ids[r.user_idx],
            "movieId": r.index.item_ids[r.item_idx],
            "rating": r.rating,
            "timestamp": r.timestamp,
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pacsv.write_csv(table, tmp)
    os.replace(tmp, path)


# --- workers: each runs in its own process and prints one JSON line ---------------------


def work_load(csv: str) -> dict:
    from movierec.data.load import load

    start = time.perf_counter()
    ratings = load(csv)
    return {"seconds": time.perf_counter() - start, "rows": len(ratings), "peak_mb": peak_mb()}


def work_train(csv: str, model: str, epochs: int, topn: bool, device: str) -> dict:
    """Train ``model`` for ``epochs`` (0: its own defaults, early stopping included: to convergence)."""
    import numpy as np

    from movierec import fitting, pipeline
    from movierec.data.load import load
    from movierec.models import get
    from movierec.training import TrainConfig

    parts = pipeline.split(load(csv))
    n_train = parts.n_train
    if epochs:
        config = TrainConfig.for_model(get(model), n_train, epochs=epochs, patience=None, device=device)
    else:
        config = TrainConfig.for_model(get(model), n_train, device=device)
    start = time.perf_counter()
    # The cheapest ranker: these rows time the rating model (the ``rank`` worker times rankers).
    recommender, report = fitting.fit(parts.fit, parts.val, model, ranker="popular", train_config=config)
    history = list(report.history)
    result = {
        "model": model,
        "converged": not epochs,
        "n_fit": len(parts.fit),
        "epoch_seconds": [h.seconds for h in history],
        "fit_seconds": time.perf_counter() - start,
        "val_rmse": history[-1].val_rmse,
    }
    if topn:
        users = np.arange(recommender.index.n_users)
        start = time.perf_counter()
        recommender.top_n(users, 10)
        result["top10_all_seconds"] = time.perf_counter() - start
        result["n_users"] = len(users)
    result["peak_mb"] = peak_mb()
    return result


def work_rank(csv: str, rater: str, device: str) -> dict:
    """The recommender ``train`` makes: the auto ranker (and list settings chosen on validation), top-10 for all."""
    import numpy as np

    from movierec import fitting, pipeline
    from movierec.data.load import load
    from movierec.evaluation import evaluate_ranking, relevance_of
    from movierec.models import get
    from movierec.training import TrainConfig

    parts = pipeline.split(load(csv))
    config = TrainConfig.for_model(get(rater), parts.n_train, device=device)
    start = time.perf_counter()
    recommender, report = fitting.fit(parts.fit, parts.val, rater, train_config=config)
    history = list(report.history)
    total = time.perf_counter() - start
    ranker_s = sum(h["seconds"] for h in recommender.info["ranker_history"])
    users = np.arange(recommender.index.n_users)
    start = time.perf_counter()
    recommender.top_n(users, 10)
    top10_seconds = time.perf_counter() - start
    peak = peak_mb()  # of the fit and the lists, before the evaluation below
    # What lists made this way are worth, on the test part no choice has seen (a sample of users).
    test = evaluate_ranking(recommender, parts.test, relevance=relevance_of(parts.fit), max_users=5000)
    return {
        "model": f"{recommender.ranker_name} + {rater}",
        "ranker": recommender.ranker_name,
        "ranker_fit_seconds": ranker_s,
        "rater_fit_seconds": sum(h.seconds for h in history),
        "selection_seconds": total - ranker_s - sum(h.seconds for h in history),
        "lists": recommender.info["lists_choice"],
        "top10_all_seconds": top10_seconds,
        "test_ndcg": test["ndcg"],
        "test_users": test["n_users"],
        "n_users": len(users),
        "n_fit": len(parts.fit),
        "peak_mb": peak,
    }


def run_worker(args: list[str], env: dict | None = None, python: str = sys.executable) -> dict:
    proc = subprocess.run(
        [python, str(Path(__file__).resolve()), "--worker", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def keras_epoch(python: str, users: int, items: int, ratings: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "keras.json"
        cmd = [python, str(HERE / "keras_notebook.py"), "--synthetic", f"{users},{items},{ratings}", "--epochs", "1"]
        proc = subprocess.run([*cmd, "--json", str(out)], capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
        data = json.loads(out.read_text())
    return {"seconds": data["seconds_per_epoch"], "tensorflow": data.get("tensorflow")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=138_493)
    parser.add_argument("--items", type=int, default=26_744)
    parser.add_argument("--ratings", type=int, default=20_000_263)
    parser.add_argument("--models", default="mlp,mf,als,bmf,knn", help="comma-separated models to time")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per gradient-trained model (median reported)")
    parser.add_argument("--sweeps", type=int, default=5, help="sweeps per model with its own fit (als, bmf; median)")
    parser.add_argument("--converge", default="blend", help="models trained to the end ('' for none)")
    parser.add_argument("--topn-model", default="als", help="rating model beside the auto ranker for top-10 for all")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--keras-python", default="/work/tfenv/bin/python", help="a Python with TensorFlow")
    parser.add_argument("--csv", type=Path, help="where the synthetic CSV lives (default: in the cache)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        kind, *rest = args.worker
        if kind == "load":
            result = work_load(rest[0])
        elif kind == "rank":
            result = work_rank(rest[0], rest[1], rest[2])
        else:
            result = work_train(rest[0], rest[1], int(rest[2]), rest[3] == "1", rest[4])
        print(json.dumps(result))
        return

    cache = Path(os.environ.get("MOVIEREC_CACHE", Path.home() / ".cache" / "movierec"))
    csv = args.csv or cache / "bench" / f"synthetic-{args.users}x{args.items}x{args.ratings}.csv"
    if not csv.exists():
        print(f"writing {csv} (once; not timed)", file=sys.stderr)
        write_csv(csv, args.users, args.items, args.ratings)

    figures: dict = {"machine": summary(), "csv": str(csv), "csv_mb": csv.stat().st_size / 1e6}
    with tempfile.TemporaryDirectory() as fresh:
        env = {"MOVIEREC_CACHE": fresh}
        figures["load_first"] = run_worker(["load", str(csv)], env)
        figures["load_cached"] = run_worker(["load", str(csv)], env)
        figures["models"] = []
        print("timing the ranker and top-10 for every user", file=sys.stderr)
        figures["ranker"] = run_worker(["rank", str(csv), args.topn_model, args.device], env)
        for model in filter(None, args.models.split(",")):
            print(f"timing {model}", file=sys.stderr)
            epochs = args.sweeps if get(model).sweeps is not None else args.epochs
            figures["models"].append(run_worker(["train", str(csv), model, str(epochs), "0", args.device], env))
        for model in filter(None, args.converge.split(",")):
            print(f"training {model} to convergence", file=sys.stderr)
            figures["models"].append(run_worker(["train", str(csv), model, "0", "0", args.device], env))
    if args.keras_python and Path(args.keras_python).exists():
        print("timing the Keras notebook model", file=sys.stderr)
        figures["keras"] = keras_epoch(args.keras_python, args.users, args.items, args.ratings)
    print_table(figures, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


def print_table(f: dict, args: argparse.Namespace) -> None:
    print(f"machine: {f['machine']}")
    print(
        f"data: synthetic {args.users:,} users x {args.items:,} items x {args.ratings:,} ratings ({f['csv_mb']:.0f} MB)"
    )
    print()
    print("| what | seconds | peak memory (MB) | note |")
    print("|---|---:|---:|---|")
    for key, label in (("load_first", "load CSV, first time"), ("load_cached", "load CSV, from cache")):
        r = f[key]
        if "error" in r:
            print(f"| {label} | - | - | {r['error']} |")
        else:
            print(f"| {label} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | {r['rows']:,} rows |")
    r = f.get("ranker", {})
    if "error" in r:
        print(f"| ranker | - | - | {r['error']} |")
    elif r:
        fit = f"{r['ranker']}: ranker fit on {r['n_fit']:,} ratings"
        print(f"| {fit} | {r['ranker_fit_seconds']:.1f} | {r['peak_mb']:.0f} | {r['lists']} |")
        print(f"| list settings chosen on the validation part | {r['selection_seconds']:.1f} | | |")
        top = f"{r['model']}: top-10 for all {r['n_users']:,} users"
        quality = f"; test NDCG@10 {r['test_ndcg']:.4f} ({r['test_users']:,} users)" if "test_ndcg" in r else ""
        print(f"| {top} | {r['top10_all_seconds']:.1f} | | seen items excluded{quality} |")
    keras = f.get("keras", {})
    for r in f["models"]:
        if "error" in r:
            print(f"| {r.get('model', '?')} | - | - | {r['error']} |")
            continue
        note = f"{r['n_fit']:,} training ratings, val RMSE {r['val_rmse']:.4f}"
        if r.get("converged"):
            epochs = len(r["epoch_seconds"])
            label = f"{r['model']}: trained to the end ({epochs} epochs or sweeps)"
            print(f"| {label} | {r['fit_seconds']:.0f} | {r['peak_mb']:.0f} | {note} |")
            continue
        per_epoch = sorted(r["epoch_seconds"])[len(r["epoch_seconds"]) // 2]
        if len(r["epoch_seconds"]) > 1:
            note += f"; median of {len(r['epoch_seconds'])}"
        if r["model"] == "mlp" and "seconds" in keras:
            note += f"; Keras {keras['seconds']:.1f} s, {keras['seconds'] / per_epoch:.1f}x slower"
        note += f"; fit {r['fit_seconds']:.0f} s"
        print(f"| {r['model']}: seconds per epoch | {per_epoch:.2f} | {r['peak_mb']:.0f} | {note} |")
        if "top10_all_seconds" in r:
            label = f"{r['model']}: top-10 for all {r['n_users']:,} users"
            print(f"| {label} | {r['top10_all_seconds']:.1f} | | seen items excluded |")
    if "seconds" in keras:
        print(f"| Keras notebook model (TF {keras['tensorflow']}): seconds per epoch | {keras['seconds']:.1f} | | |")
    elif keras:
        print(f"| Keras notebook model | - | - | {keras['error']} |")


if __name__ == "__main__":
    main()
