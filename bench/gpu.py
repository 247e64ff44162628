"""On a CUDA machine: does training on the GPU match the CPU, and how fast is an epoch at ML-20M shape?

1. Correctness: every registered model is trained with the same seed on the same small
   synthetic log on cpu and on cuda; their validation RMSEs must agree within TOLERANCE
   (exit 1 otherwise). All of them take a second or two at that size, knn and blend too.
2. Speed: one epoch of mlp, mf and als at their default settings on a synthetic log of
   ML-20M's shape (138,493 users x 26,744 items x 20,000,263 ratings, movierec's split),
   with seconds per epoch beside the H100 targets and peak GPU memory.

Run it through bench/gpu.sh, which keeps every file it writes in a temp dir:

    bench/gpu.sh                 # check, then time at full size (a few minutes on an H100)
    bench/gpu.sh --size small    # check, then time on 200k ratings
    bench/gpu.sh --device cpu    # the same flow on CPU at a tiny size: tests the script
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from machine import summary  # bench/machine.py: the same description in every script

from movierec import fitting, pipeline
from movierec.data.synthetic import SyntheticConfig, generate
from movierec.models import MODELS, get
from movierec.training import TrainConfig

RATERS = [name for name, spec in MODELS.items() if spec.kind == "rater"]
"""The rating models: the ones with a validation RMSE to compare across devices."""

SIZES = {
    "full": (138_493, 26_744, 20_000_263),  # ML-20M's shape
    "small": (10_000, 5_000, 200_000),
    "tiny": (300, 200, 5_000),
}
CHECK_SIZE = (3_000, 2_000, 100_000)
"""The log the GPU is checked on: large enough for a stable RMSE, seconds to train on CPU."""
CHECK_EPOCHS = 3
TARGETS = {"mlp": 1.0, "mf": 0.2, "als": 0.2}
"""Seconds per epoch (a sweep, for als) on an H100 at full size: the biased-MF target applies to both."""
TOLERANCE = 0.01
"""Largest |cuda - cpu| validation RMSE allowed. Not zero: the GPU sums float32 in another order
(and scatters embedding gradients with atomics), so the weights drift apart by rounding. On the
check log on CPU, scaling the initial weights by 1 + 1e-6 noise moved mlp's RMSE by 5e-5; seeds
0-3 (a new init and shuffle) spread it by 0.006 (mlp), 0.001 (mf), 0.007 (bmf). 0.01 is above even
that worst case, so rounding never fails the check, while a device bug that makes the GPU train a
different model than the CPU (lost or doubled updates, wrong rows) usually shows as a larger
gap. The differences are printed, so a smaller one is there to judge too."""


def synthetic_parts(users: int, items: int, ratings: int) -> pipeline.Parts:
    """Generator seed 0 and movierec's own split (80/20, then 5% of training for validation)."""
    log = generate(SyntheticConfig(n_users=users, n_items=items, n_ratings=ratings)).ratings
    return pipeline.split(log)


def train(parts: pipeline.Parts, model: str, epochs: int, device: str) -> tuple[list, float]:
    """The model's default settings but for epochs and device; returns the history and the fit's wall seconds.

    The defaults alone (no candidates compared): two devices choosing different settings would
    look like a disagreement."""
    spec = get(model)
    config = TrainConfig.for_model(spec, epochs=epochs, device=device)
    start = time.perf_counter()
    _, report = fitting.fit(parts.fit, parts.val, model, train_config=config, model_config=spec.config_type())
    return list(report.history), time.perf_counter() - start


def check(device: str, size: tuple[int, int, int], epochs: int) -> bool:
    """Train each model on cpu and on ``device``; print their validation RMSEs; True if all agree."""
    parts = synthetic_parts(*size)
    print(f"## {device} against cpu: {len(parts.fit):,} training ratings, {epochs} epochs, seed 0\n")
    print(f"| model | val RMSE cpu | val RMSE {device} | difference | within {TOLERANCE} |")
    print("|---|---:|---:|---:|---|")
    all_ok = True
    for name in RATERS:
        try:
            cpu = train(parts, name, epochs, "cpu")[0][-1].val_rmse
            other = train(parts, name, epochs, device)[0][-1].val_rmse
        except Exception as error:  # one broken model should not hide the others' figures
            print(f"| {name} | - | - | - | no: {type(error).__name__}: {error} |")
            all_ok = False
            continue
        ok = abs(other - cpu) <= TOLERANCE
        all_ok &= ok
        print(f"| {name} | {cpu:.5f} | {other:.5f} | {other - cpu:+.5f} | {'yes' if ok else 'NO'} |")
    print()
    return all_ok


def timing(device: str, size_name: str) -> None:
    """One epoch each of the TARGETS models at their default settings on ``device``."""
    users, items, ratings = SIZES[size_name]
    print(f"generating {users:,} x {items:,} x {ratings:,} ratings (not timed)", file=sys.stderr)
    parts = synthetic_parts(users, items, ratings)
    cuda = device == "cuda"
    print(f"## seconds per epoch on {device}: synthetic {users:,} users x {items:,} items x {ratings:,} ratings\n")
    print("| model | batch | training ratings | s/epoch (history) | target | fit wall s | val RMSE | peak GPU MB |")
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for name, target in TARGETS.items():
        print(f"timing {name}", file=sys.stderr)
        batch = TrainConfig.for_model(get(name)).batch_size
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        try:
            history, wall = train(parts, name, 1, device)
        except Exception as error:
            print(f"| {name} | {batch} | {len(parts.fit):,} | - | - | - | - | {type(error).__name__}: {error} |")
            continue
        seconds = history[0].seconds
        # Targets are for an H100 at full size; elsewhere they are shown for reference only.
        verdict = ("met" if seconds <= target else "MISSED") if cuda and size_name == "full" else "n/a"
        peak = f"{torch.cuda.max_memory_allocated() / 2**20:,.0f}" if cuda else "-"
        print(
            f"| {name} | {batch} | {len(parts.fit):,} | {seconds:.3f} | <= {target} ({verdict}) "
            f"| {wall:.2f} | {history[0].val_rmse:.4f} | {peak} |"
        )
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--size", choices=list(SIZES), help="timing log: full (default on cuda) or tiny (on cpu)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            f"bench/gpu.sh: no CUDA GPU visible to PyTorch {torch.__version__} "
            f"(built for CUDA {torch.version.cuda}); run on a GPU machine, or pass --device cpu to test the script",
            file=sys.stderr,
        )
        return 2
    size = args.size or ("full" if args.device == "cuda" else "tiny")
    # On cpu the check compares cpu with cpu (a determinism check) on the tiny log, so the script runs anywhere.
    check_size, check_epochs = (CHECK_SIZE, CHECK_EPOCHS) if args.device == "cuda" else (SIZES["tiny"], 2)

    print(f"machine: {summary()}")
    print(f"device: {torch.cuda.get_device_name() if args.device == 'cuda' else 'cpu (no GPU used)'}\n")
    # The check also warms the GPU up (context, kernels, allocator), so the timed epochs start warm.
    ok = check(args.device, check_size, check_epochs)
    timing(args.device, size)
    if not ok:
        print(f"FAIL: {args.device} and cpu validation RMSEs differ by more than {TOLERANCE}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
