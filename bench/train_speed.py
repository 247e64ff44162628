"""Wall time, peak memory and test figures of `movierec train`, one code version against another.

Each run is a fresh `movierec train` process (its own peak resident memory, from wait4),
and the variants alternate within each seed, so a busy machine slows them alike. A
variant is a label, a source tree (its ``src`` goes first on PYTHONPATH) and extra
flags; the first is the reference.

    .venv/bin/python bench/train_speed.py --data ../shared/data/ml-latest-small \\
        --variant today=/tmp/base/src --variant new=src --variant "new-100=src:--epochs 100"
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe, summary  # bench/machine.py: the same description in every script

HERE = Path(__file__).resolve().parent


def parse_variant(text: str) -> tuple[str, Path, list[str]]:
    """``label=SRC`` or ``label=SRC:FLAGS``."""
    label, _, rest = text.partition("=")
    src, _, flags = rest.partition(":")
    if not label or not src:
        raise SystemExit(f"--variant wants label=SRC[:FLAGS], got {text!r}")
    return label, Path(src).resolve(), shlex.split(flags)


def run_once(src: Path, flags: list[str], data: str, seed: int, out: Path) -> dict:
    """One `movierec train`: its wall seconds, peak memory and the figures its metrics.json holds."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-m", "movierec", "train", "--data", data, "--seed", str(seed), "--out", str(out), *flags]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "seconds": round(seconds, 1),
        "peak_mb": round(usage.ru_maxrss / 1024),
        "ndcg": metrics["ranking"]["ndcg"],
        "rmse": metrics.get("test_rmse"),
        "rmse_without_sittings": metrics.get("test_rmse_without_sittings"),
        "epochs": metrics["train_config"]["epochs"],
        "lists_choice": metrics.get("lists_choice"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--variant", action="append", required=True, help="label=SRC[:FLAGS]; the first is the reference"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "train-speed-ml-latest-small.json")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variant]
    seeds = [int(s) for s in args.seeds.split(",")]
    heading = summary()
    record = {
        "command": "movierec train --data " + args.data + " --seed S",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": describe(),
        "variants": [{"label": label, "flags": flags} for label, _, flags in variants],
        "runs": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for label, src, flags in variants:
                row = {"variant": label, "flags": flags, "seed": seed, "load_average": round(os.getloadavg()[0], 2)}
                row.update(run_once(src, flags, args.data, seed, Path(tmp) / f"{label}-{seed}"))
                record["runs"].append(row)
                args.out.write_text(json.dumps(record, indent=1) + "\n")  # after every run: a stopped bench keeps them
                print(json.dumps({k: v for k, v in row.items() if k != "lists_choice"}), flush=True)
    print(f"\n{heading}; {datetime.date.today()}")
    print(f"{'variant':<12} {'seed':>4} {'wall s':>7} {'peak MB':>8} {'NDCG@10':>8} {'RMSE':>7} {'load':>5}")
    for row in record["runs"]:
        rmse = "-" if row["rmse"] is None else f"{row['rmse']:.4f}"
        print(
            f"{row['variant']:<12} {row['seed']:>4} {row['seconds']:>7.1f} {row['peak_mb']:>8} "
            f"{row['ndcg']:>8.4f} {rmse:>7} {row['load_average']:>5.1f}"
        )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
