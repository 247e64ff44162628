"""Markdown tables of the benchmark figures, read from bench/results/*.json and nothing else.

    python bench/report.py headline      # the README's table: lists and ratings against the peers
    python bench/report.py lists         # one section of the benchmarks page (also: ratings, synthetic,
                                         # strong, speed, serve); `all` prints the whole page

The documentation build calls ``page()`` (docs/gen/hooks.py), so every figure on the
benchmarks page comes from a file a benchmark command wrote. Each table names the files it
read, the command that writes them, the machine recorded in them and the date the file was
last committed (the date it was written, for a file written once and committed).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SEEDS = (0, 1, 2)

COMMANDS = {
    "ranking": "python bench/ranking.py --seeds 0,1,2 --json bench/results/ranking-ml-latest-small.json",
    "ranking_peers": "python bench/ranking_peers.py --seed S",  # writes ranking-peers-ml-latest-small-seedS.json
    "accuracy": (
        "python bench/accuracy.py --no-synthetic --seeds 0,1,2 --json bench/results/accuracy-ml-latest-small.json"
    ),
    "blend": (
        "python bench/accuracy.py --no-synthetic --models blend --peers none "
        "--json bench/results/accuracy-ml-latest-small-blend.json"
    ),
    "peers": (
        "python bench/peers.py --data ml-latest-small/ratings.csv --seed S "
        "--json bench/results/peers-ml-latest-small-seedS.json"
    ),
    "keras": (
        "python bench/keras_notebook.py --data ml-latest-small/ratings.csv --seed S [--sparse-momentum] "
        "--json bench/results/keras_notebook[-sparse]-ml-latest-small-seedS.json"
    ),
    "compare": (
        "movierec compare --models baseline,mlp,mf,als,knn,bmf,blend,ease,ials,popular --json "
        "> bench/results/compare-synthetic-default.json"
    ),
    "strong": (
        "python bench/accuracy.py --no-real --synthetic ml20m-strong --seeds 0 --models MODELS "
        "--peers surprise --json bench/results/accuracy-ml20m-strong[-MODELS].json"
    ),
    "speed": "python bench/speed.py --json bench/results/speed-ml20m-shape.json",
    "speed_lists": (
        "python bench/speed.py --models '' --converge '' --keras-python '' "
        "--json bench/results/speed-lists-ml20m-shape.json"
    ),
    "serve": "python bench/serve.py --model MODEL [--server-arg=--workers --server-arg=2] --json FILE",
}


def load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def committed(name: str) -> str:
    """The date the file was last committed (YYYY-MM-DD), or "not committed" outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%cs", "--", str(RESULTS / name)],
            capture_output=True,
            text=True,
            cwd=RESULTS,
            check=False,
        ).stdout.strip()
    except OSError:
        out = ""
    return out or "not committed"


def machine(found: dict) -> str:
    m = found.get("machine")
    if isinstance(m, dict):
        return f"{m.get('cpu', 'unknown CPU')}, {m.get('cores', '?')} cores"
    return str(m).split(", torch")[0] if m else "machine not recorded"


def source(names: list[str], command: str) -> str:
    """One line under a table: the files, their machines and dates, the command."""
    seen: dict[tuple[str, str], list[str]] = {}
    for name in names:
        seen.setdefault((machine(load(name)), committed(name)), []).append(f"`{name}`")
    where = "; ".join(f"{', '.join(files)}: {m}, {date}" for (m, date), files in seen.items())
    return f"From {where}. Written by `{command}`."


def spread(values: list[float], digits: int = 4) -> str:
    """Mean ± sample standard deviation over seeds."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _ranking_peer(peer: str, seed: int, metric: str = "ndcg") -> float:
    found = load(f"ranking-peers-ml-latest-small-seed{seed}.json")
    return next(r["test"][metric] for r in found["results"] if r["peer"] == peer)


def _surprise(model: str, seed: int) -> float:
    found = load(f"peers-ml-latest-small-seed{seed}.json")
    return next(r["rmse"] for r in found["results"] if r["model"] == model)


def _blend(seed: int, key: str) -> float:
    return next(r[key] for r in load("accuracy-ml-latest-small-blend.json")["rows"] if r["seed"] == seed)


def _ours(system: str, seed: int, metric: str = "ndcg") -> float:
    return load("ranking-ml-latest-small.json")["seeds"][str(seed)][system][metric]


def headline() -> str:
    """Lists (NDCG@10) and ratings (test RMSE) on ml-latest-small, mean ± sd over split seeds 0, 1, 2."""
    rows = [
        (
            "**movierec `train`, the defaults**",
            [_ours("ease d0.2 + blend", s) for s in SEEDS],
            [_blend(s, "rmse") for s in SEEDS],
        ),
        ("movierec, ratings without times (`blend` alone)", [], [_blend(s, "rmse_without_sittings") for s in SEEDS]),
        ("cornac EASE", [_ranking_peer("cornac EASE", s) for s in SEEDS], []),
        ("implicit ALS", [_ranking_peer("implicit ALS", s) for s in SEEDS], []),
        ("LensKit ImplicitMF", [_ranking_peer("LensKit ImplicitMF", s) for s in SEEDS], []),
        ("Surprise KNNBaseline", [], [_surprise("KNNBaseline", s) for s in SEEDS]),
        ("Surprise SVD++", [], [_surprise("SVDpp", s) for s in SEEDS]),
        (
            "Keras, the original notebook's network",
            [],
            [load(f"keras_notebook-ml-latest-small-seed{s}.json")["test"]["rmse"] for s in SEEDS],
        ),
        ("most popular", [_ranking_peer("MostPopular", s) for s in SEEDS], []),
    ]
    lines = ["| system | lists: NDCG@10 (higher is better) | ratings: test RMSE (lower is better) |", "|---|---:|---:|"]
    lines += [f"| {name} | {spread(ndcg)} | {spread(rmse)} |" for name, ndcg, rmse in rows]
    return "\n".join(lines)


LIST_ROWS = [
    ("`train`'s default: EASE with genres, discount 0.2, reordered by `blend`", "ease d0.2 + blend"),
    ("EASE without genres, discount 0.2, reordered by `blend`", "ease-nogenres d0.2 + blend"),
    ("EASE, discount 0.2, reordered by `als`", "ease d0.2 + als"),
    ("EASE alone (discount 0.2)", "ease d0.2"),
    ("EASE without genres alone (discount 0.2)", "ease-nogenres d0.2"),
    ("EASE alone, no discount", "ease d0"),
    ("EASE without genres alone, no discount", "ease-nogenres d0"),
    ("iALS, reordered by `blend`", "ials d0 + blend"),
    ("iALS alone", "ials d0"),
    ("movierec `popular`", "popular"),
    ("`blend` by predicted rating", "blend by rating"),
    ("`mlp` by predicted rating", "mlp by rating"),
]
PEER_ROWS = [
    "cornac EASE",
    "implicit ALS",
    "LensKit ImplicitMF",
    "cornac VAECF",
    "cornac BiVAECF",
    "cornac BPR",
    "implicit BPR",
    "LensKit ItemKNN implicit",
    "MostPopular",
]


def lists() -> str:
    head = "| system | seed 0 | seed 1 | seed 2 | mean ± sd | recall@10 | MAP@10 | coverage |"
    lines = ["### Lists on ml-latest-small: NDCG@10 on test", "", head, "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def row(name: str, get) -> str:
        ndcg = [get(s, "ndcg") for s in SEEDS]
        means = [statistics.mean(get(s, m) for s in SEEDS) for m in ("recall", "map", "coverage")]
        cells = [f"{v:.4f}" for v in ndcg] + [spread(ndcg)] + [f"{means[0]:.4f}", f"{means[1]:.4f}", f"{means[2]:.3f}"]
        return f"| {name} | " + " | ".join(cells) + " |"

    for name, key in LIST_ROWS:
        lines.append(row(name, lambda s, m, key=key: _ours(key, s, m)))
    for peer in PEER_ROWS:
        lines.append(row(f"{peer} (peer)", lambda s, m, peer=peer: _ranking_peer(peer, s, m)))
    files = ["ranking-ml-latest-small.json"] + [f"ranking-peers-ml-latest-small-seed{s}.json" for s in SEEDS]
    lines += ["", source(files[:1], COMMANDS["ranking"]), "", source(files[1:], COMMANDS["ranking_peers"])]
    return "\n".join(lines)


def ratings() -> str:
    rows = load("accuracy-ml-latest-small.json")["rows"]
    models = list(dict.fromkeys(r["model"] for r in rows))

    def rmse(model: str, seed: int) -> float:
        if model == "blend":  # the blend as it is now: bench/accuracy.py --models blend, each rater alone
            return _blend(seed, "rmse_without_sittings")
        return next(r["rmse"] for r in rows if r["model"] == model and r["seed"] == seed)

    head = ["split seed"] + [m if " " in m else f"`{m}`" for m in models] + ["`blend` + sitting shifts"]
    lines = ["### Ratings on ml-latest-small: test RMSE", "", "| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for s in SEEDS:
        cells = [rmse(m, s) for m in models] + [_blend(s, "rmse")]
        lines.append(f"| {s} | " + " | ".join(f"{v:.4f}" for v in cells) + " |")
    lines += [
        "",
        "Every column is a rater alone (no times) but the last, which adds the shifts of the "
        "sittings the test ratings fall in (see Evaluation).",
        "",
        source(["accuracy-ml-latest-small.json"], COMMANDS["accuracy"]),
        "",
        source(["accuracy-ml-latest-small-blend.json"], COMMANDS["blend"]).replace("From", "The `blend` columns from"),
        "",
        source([f"peers-ml-latest-small-seed{s}.json" for s in SEEDS], COMMANDS["peers"]),
        "",
        source([f"keras_notebook-ml-latest-small-seed{s}.json" for s in SEEDS], COMMANDS["keras"]),
    ]
    return "\n".join(lines)


def synthetic() -> str:
    found = load("compare-synthetic-default.json")
    models = found["models"]
    lines = [
        f"### The default synthetic data ({found['data']})",
        "",
        "| | " + " | ".join(f"`{m['model']}`" for m in models) + " |",
        "|---|" + "---:|" * len(models),
    ]
    for label, key in (("test RMSE", "rmse"), ("NDCG@10", "ndcg"), ("seconds", "wall_seconds")):
        cells = ["" if m.get(key) is None else f"{m[key]:.{1 if key == 'wall_seconds' else 4}f}" for m in models]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "A rater's NDCG@10 here is its list by predicted rating.",
        "",
        source(["compare-synthetic-default.json"], COMMANDS["compare"]),
    ]
    return "\n".join(lines)


def strong() -> str:
    names = ["accuracy-ml20m-strong.json", "accuracy-ml20m-strong-als.json", "accuracy-ml20m-strong-blend.json"]
    lines = [
        "### ML-20M's shape with a strong signal (synthetic): test RMSE",
        "",
        "| file | model | test RMSE | noise floor | seconds |",
        "|---|---|---:|---:|---:|",
    ]
    for name in names:
        for r in load(name)["rows"]:
            floor = r.get("noise_floor")
            lines.append(
                f"| `{name}` | {r['model']} | {r['rmse']:.4f} | "
                f"{'' if floor is None else f'{floor:.4f}'} | {r.get('seconds', 0):.0f} |"
            )
    lines += ["", source(names, COMMANDS["strong"])]
    return "\n".join(lines)


def speed() -> str:
    found = load("speed-ml20m-shape.json")
    lines = [
        "### Training at ML-20M's shape (synthetic, 20M ratings)",
        "",
        "| model | seconds per epoch (each) | fit seconds | peak MB | top-10 for all users, s |",
        "|---|---|---:|---:|---:|",
    ]
    for m in found["models"]:
        each = m.get("epoch_seconds", [])
        epochs = (
            ", ".join(f"{s:.1f}" for s in each)
            if len(each) <= 6
            else (f"{len(each)} sweeps, median {statistics.median(each):.1f}, last {each[-1]:.1f}")
        )
        top = m.get("top10_all_seconds")
        lines.append(
            f"| `{m['model']}` | {epochs} | {m['fit_seconds']:.1f} | {m['peak_mb']:.0f} | "
            f"{'' if top is None else f'{top:.1f}'} |"
        )
    lines += [
        "",
        f"Loading the 20M-row CSV: {found['load_first']['seconds']:.1f} s the first time, "
        f"{found['load_cached']['seconds']:.2f} s from the binary cache.",
        "",
        source(["speed-ml20m-shape.json"], COMMANDS["speed"]),
    ]
    ranker = load("speed-lists-ml20m-shape.json")["ranker"]
    lines += [
        "",
        "### Lists at ML-20M's shape",
        "",
        "| step | measured |",
        "|---|---:|",
        f"| ranker fit ({ranker['ranker']}) | {ranker['ranker_fit_seconds']:.1f} s |",
        f"| list settings chosen on validation | {ranker['selection_seconds']:.1f} s |",
        f"| top-10 for all {ranker['n_users']:,} users | {ranker['top10_all_seconds']:.1f} s |",
        f"| peak memory | {ranker['peak_mb'] / 1024:.1f} GB |",
        f"| test NDCG@10 ({ranker['test_users']:,} users) | {ranker['test_ndcg']:.4f} |",
        "",
        source(["speed-lists-ml20m-shape.json"], COMMANDS["speed_lists"]),
    ]
    return "\n".join(lines)


def serve() -> str:
    names = sorted(p.name for p in RESULTS.glob("serve-*.json"))
    lines = [
        "### Serving at ML-20M's shape, 16 clients",
        "",
        "| file | rater | known user: req/s, p99 ms | new user (5 ratings): req/s, p99 ms | server CPU ms |",
        "|---|---|---:|---:|---:|",
    ]
    for name in names:
        found = load(name)
        known, new = (found["loads"][k] for k in found["loads"])
        lines.append(
            f"| `{name}` | {found['models']['model']} | {known['rps']:.0f}, {known['p99_ms']:.1f} | "
            f"{new['rps']:.0f}, {new['p99_ms']:.1f} | {known['server_cpu_ms']:.2f} / "
            f"{new['server_cpu_ms']:.2f} |"
        )
    lines += ["", source(names, COMMANDS["serve"])]
    return "\n".join(lines)


SECTIONS = {
    "lists": lists,
    "ratings": ratings,
    "synthetic": synthetic,
    "strong": strong,
    "speed": speed,
    "serve": serve,
}


def page() -> str:
    return "\n\n".join(f() for f in SECTIONS.values())


def main(argv: list[str]) -> None:
    what = argv[0] if argv else "all"
    if what == "headline":
        print(headline())
    elif what == "all":
        print(page())
    elif what in SECTIONS:
        print(SECTIONS[what]())
    else:
        sys.exit(f"unknown table {what!r}; choose headline, all or one of {', '.join(SECTIONS)}")


if __name__ == "__main__":
    main(sys.argv[1:])
