"""Lists: movierec's rankers and rating models beside peer libraries, on the same split and protocol.

For each split seed (movierec's split: random 80/20, then 5% of the training part for
validation), every system is scored the way ``movierec evaluate`` scores lists: each
test user with a test rating >= 4 gets a top 10 chosen from ALL items they did not rate
in training; a test item rated >= 4 is relevant. Rows: movierec's rankers alone, rankers
whose candidates a rating model reorders (``ListConfig``: what ``train`` serves), rating
models listing by predicted rating (how every list was made before rankers), the
popular list, and the peers (implicit, cornac, LensKit; tuned on the validation part
and refitted on fit + validation, by ``bench/ranking_peers.py`` in its own venv, read
from bench/results/).

The same systems are also scored on the validation part (rankers trained on the fit
part alone), which is where the defaults were chosen: test figures never chose anything.

    .venv/bin/python bench/ranking.py --seeds 0,1,2 --json bench/results/ranking-ml-latest-small.json
    .venv/bin/python bench/ranking.py --synthetic 2000,1500,200000 --seeds 0

Nothing in the package or the tests imports this file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from movierec import fitting, models, pipeline, references
from movierec.compare import by_rating
from movierec.data.load import load
from movierec.data.synthetic import SyntheticConfig, generate
from movierec.evaluation import evaluate_ranking
from movierec.models.ease import EASEConfig
from movierec.recommend import ListConfig
from movierec.training import TrainConfig

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from machine import summary  # noqa: E402

DEFAULT_DATA = BENCH.parent.parent / "shared" / "data" / "ml-latest-small"
RESULTS = BENCH / "results"
RANKERS = {"ease": ("ease", None), "ease-nogenres": ("ease", EASEConfig(genres=0.0)), "ials": ("ials", None)}
"""Row name -> (ranker, config; None: its defaults). EASE without its genre rows shows what they add."""
RATERS = ("baseline", "mlp", "als", "blend")
METRICS = ("ndcg", "recall", "precision", "map", "coverage")


DISCOUNTS = (0.0, 0.2)
"""No discount, and the default (0.1 and 0.3 were measured too: bench/NOTES.md)."""


def fitted_raters(parts, seed: int) -> dict[str, tuple]:
    """name -> (recommender, seconds): each rater trained on fit, early-stopped on val, as ``train`` does."""
    out = {}
    for name in RATERS:
        started = time.perf_counter()
        config = TrainConfig.for_model(models.get(name), parts.n_train, seed=seed)
        rated, _ = fitting.fit(parts.fit, parts.val, name, ranker="popular", train_config=config)
        out[name] = (rated, time.perf_counter() - started)
    return out


def systems(train_parts, raters: dict, seed: int) -> dict[str, tuple]:
    """name -> (recommender, fit seconds): movierec's lists, the rankers fitted on ``train_parts``.

    ``train_parts`` is [fit] for the validation scores, [fit, val] for the test ones.
    """
    history = train_parts[0].by_user(*train_parts[1:])
    base = replace(raters["baseline"][0], history=history)
    out: dict[str, tuple] = {}
    for name, (ranker_name, ranker_config) in RANKERS.items():
        started = time.perf_counter()
        ranker, config, _ = fitting.fit_ranker(train_parts, ranker_name, ranker_config, seed=seed)
        ranker_s = time.perf_counter() - started
        for discount in DISCOUNTS:
            plain = ListConfig(gate=False, discount=discount)
            out[f"{name} d{discount:g}"] = (
                replace(base, ranker=ranker, ranker_name=ranker_name, ranker_config=config, lists=plain),
                ranker_s,
            )
            for rater_name, (rated, rater_s) in raters.items():
                gated = replace(
                    rated,
                    history=history,
                    ranker=ranker,
                    ranker_name=ranker_name,
                    ranker_config=config,
                    lists=ListConfig(discount=discount),
                )
                out[f"{name} d{discount:g} + {rater_name}"] = (gated, ranker_s + rater_s)
    for rater_name, (rated, rater_s) in raters.items():
        out[f"{rater_name} by rating"] = (by_rating(replace(rated, history=history)), rater_s)
    out["popular"] = (references.popular_of(base), 0.0)
    return out


def score(systems_: dict, target, seed: int) -> dict[str, dict]:
    rows = {}
    for name, (rec, seconds) in systems_.items():
        r = evaluate_ranking(rec, target, k=10, seed=seed)
        rows[name] = {**{m: r[m] for m in METRICS}, "seconds": seconds, "n_users": r["n_users"]}
    return rows


def peers(data_name: str, seed: int) -> dict[str, dict]:
    path = RESULTS / f"ranking-peers-{data_name}-seed{seed}.json"
    if not path.exists():
        return {}
    found = json.loads(path.read_text())
    rows = {}
    for row in found["results"]:  # bench/ranking_peers.py's rows
        test = row.get("test") or {}
        rows[f"peer: {row['peer']}"] = {
            **{m: test.get(m) for m in METRICS},
            "seconds": row.get("fit_seconds"),
            "val_ndcg": row.get("val_ndcg"),
        }
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="ratings (default: ../shared/data/ml-latest-small)")
    ap.add_argument("--synthetic", default=None, help="USERS,ITEMS,RATINGS of synthetic data instead")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--report", type=Path, default=None, help="print the tables of an earlier --json, peers reread")
    args = ap.parse_args()
    if args.report:
        report(json.loads(args.report.read_text()))
        return
    truth = None
    if args.synthetic:
        n_users, n_items, n_ratings = (int(x) for x in args.synthetic.split(","))
        truth = generate(SyntheticConfig(n_users=n_users, n_items=n_items, n_ratings=n_ratings))
        ratings = truth.ratings
    else:
        ratings = load(args.data or DEFAULT_DATA)
    torch.set_num_threads(2)
    print(f"# {ratings.name}; {summary()}", flush=True)
    result: dict = {"data": ratings.name, "machine": summary(), "seeds": {}}
    for seed in (int(s) for s in args.seeds.split(",")):
        parts = pipeline.split(ratings, pipeline.SplitConfig(seed=seed))
        raters = fitted_raters(parts, seed)
        val_rows = score(systems([parts.fit], raters, seed), parts.val, seed)
        test_rows = score(systems([parts.fit, parts.val], raters, seed), parts.test, seed)
        for name, row in test_rows.items():
            row["val_ndcg"] = val_rows[name]["ndcg"]
        test_rows.update(peers(ratings.name, seed))
        if truth is not None and parts.test_rows is not None:
            test_rows["oracle (the generator's truth)"] = {"ndcg": truth.oracle_ndcg(parts.train_rows, parts.test_rows)}
        result["seeds"][seed] = test_rows
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


def report(result: dict) -> None:
    """Print each seed's table and the means; peers' rows are (re)read from bench/results/."""
    for seed, test_rows in result["seeds"].items():
        test_rows.update(peers(result["data"], int(seed)))
        print(f"\n## seed {seed}: test (val NDCG@10 chose the defaults)\n")
        print("| system | val NDCG@10 | NDCG@10 | recall@10 | precision@10 | MAP@10 | coverage | fit s |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, row in sorted(test_rows.items(), key=lambda kv: -(kv[1].get("ndcg") or 0)):
            cells = [_fmt(row.get("val_ndcg"))] + [_fmt(row.get(m)) for m in METRICS] + [_fmt(row.get("seconds"), 1)]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    names = set.intersection(*(set(rows) for rows in result["seeds"].values()))
    mean = {
        n: {key: _mean([rows[n].get(key) for rows in result["seeds"].values()]) for key in ("val_ndcg", "ndcg")}
        for n in names
    }
    print("\n## means over seeds, by validation NDCG@10 (what chose the defaults)\n")
    print("| system | val NDCG@10 | test NDCG@10 |")
    print("|---|---:|---:|")
    for name, row in sorted(mean.items(), key=lambda kv: -(kv[1]["val_ndcg"] or kv[1]["ndcg"] or 0)):
        print(f"| {name} | {_fmt(row['val_ndcg'])} | {_fmt(row['ndcg'])} |")
    result["means"] = mean


def _mean(values: list) -> float | None:
    return None if any(v is None for v in values) else float(np.mean(values))


def _fmt(value: object, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    main()
