"""Training under torchrun: two gloo processes on this machine, on synthetic data.

Run as a script, this file is also the worker torchrun starts for the tests that need to
look inside the ranks: it runs the ``movierec`` command line unchanged, after wrapping
``fitting.fit_plan`` so that each rank reports the epochs it trained and a digest of its final
weights, and so that rank 1 can be SIGKILLed at the end of a chosen epoch.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from movierec import distributed
from movierec.errors import ConfigError

ARGS = ["--model", "mlp", "--synthetic", "300x200x12000", "--epochs", "3", "--device", "cpu", "--json"]
"""9,120 training ratings: nine global batches of 1,024 per epoch (the MLP's default), the last one short."""

RMSE_TOLERANCE = 1e-3
"""How far the 2-process test RMSE may be from one process's with the same global batch.

Measured on this data (3 epochs): the two agree to 2e-7, float rounding only, since a step
of two ranks sees exactly the rows of one process's step. The mistakes this guards
against move it 10x more than the tolerance: each rank taking the whole global batch
(batch 2048) +0.011, gradients summed instead of averaged (as lr 0.04 vs 0.08) +0.009;
five training seeds spread 0.954 to 0.977.
"""

TIMEOUT = 180


def digest(state: dict[str, torch.Tensor]) -> str:
    """One hash of a state dict's names and exact bytes."""
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def torchrun(*args: str, launch: tuple[str, ...] = (), env: dict | None = None) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node 2 --standalone [launch...] args...`` (``python -m torch.distributed.run``)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone", *launch, *args]
    clean = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return subprocess.run(cmd, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=TIMEOUT)


def worker(*args: str, reports: Path, kill_after: int = 0, restarts: int = 0) -> subprocess.CompletedProcess:
    """This file as torchrun's worker: the CLI with ``args``, each rank reporting into ``reports``."""
    env = {"MOVIEREC_TEST_REPORTS": str(reports), "MOVIEREC_TEST_KILL_AFTER": str(kill_after)}
    launch: tuple[str, ...] = ()
    if restarts:
        launch = ("--max-restarts", str(restarts))
        # Restarted workers would otherwise find the dead ones' addresses in the shared
        # rendezvous store and fail to connect (pytorch/pytorch#135712, #167288).
        env["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] = "1"
    return torchrun(__file__, *args, launch=launch, env=env)


def rank_reports(reports: Path) -> list[dict]:
    return [json.loads((reports / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """One uninterrupted 2-process run of the plain command line."""
    root = tmp_path_factory.mktemp("ddp")
    result = torchrun("-m", "movierec", "train", *ARGS, "--out", str(root / "model"))
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result


@pytest.fixture(scope="module")
def one_rank(tmp_path_factory):
    """The same run in one process (same global batch), in this process."""
    from helpers import run_main

    out = tmp_path_factory.mktemp("single") / "model"
    run_main(["movierec", "train", *ARGS, "--out", str(out)])
    return json.loads((out / "metrics.json").read_text())


def saved_digest(model_dir: Path) -> str:
    tensors = load_file(str(model_dir / "model.safetensors"))
    return digest({k[6:]: v for k, v in tensors.items() if k.startswith("rater.")})


def test_two_processes_write_exactly_one_model(two_ranks):
    root, result = two_ranks
    assert sorted(p.name for p in root.iterdir()) == ["model"]  # no .partial, no temporary or rank-1 leftovers
    assert sorted(p.name for p in (root / "model").iterdir()) == [
        "loss.png",
        "manifest.json",
        "metrics.json",
        "model.safetensors",
    ]
    # Only rank 0 reports: one JSON object on stdout.
    assert len(result.stdout.strip().splitlines()) == 1
    assert json.loads(result.stdout)["model"] == "mlp"


def test_two_processes_score_as_one_with_the_same_global_batch(two_ranks, one_rank):
    root, _ = two_ranks
    metrics = json.loads((root / "model" / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]
    assert metrics["train_config"]["batch_size"] == one_rank["train_config"]["batch_size"] == 1024
    assert metrics["test_rmse"] == pytest.approx(one_rank["test_rmse"], abs=RMSE_TOLERANCE)
    assert metrics["history"][-1]["val_rmse"] == pytest.approx(one_rank["history"][-1]["val_rmse"], abs=RMSE_TOLERANCE)


def test_resume_after_a_rank_is_killed(two_ranks, tmp_path):
    root, _ = two_ranks
    out = tmp_path / "model"
    killed = worker("train", *ARGS, "--out", str(out), reports=tmp_path, kill_after=2)
    assert killed.returncode != 0
    assert not out.exists()
    checkpoint = json.loads((tmp_path / "model.partial" / "checkpoint.json").read_text())
    # Rank 1 died at the end of epoch 2, so epoch 1's checkpoint was surely written (maybe 2's too).
    assert checkpoint["epoch"] in (1, 2)

    resumed = worker("train", *ARGS, "--out", str(out), "--resume", reports=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    reports = rank_reports(tmp_path)
    for report in reports:
        assert report["epochs_run"] == list(range(checkpoint["epoch"] + 1, 4))
    # The ranks agree, and with the whole optimiser state and seeded shuffles in the
    # checkpoint, the result is bit for bit the uninterrupted run's.
    assert reports[0]["digest"] == reports[1]["digest"] == saved_digest(root / "model")
    assert [h["epoch"] for h in json.loads((out / "metrics.json").read_text())["history"]] == [1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "rank0.json", "rank1.json"]


def test_torchrun_restarts_resume_by_themselves(two_ranks, tmp_path):
    root, _ = two_ranks
    out = tmp_path / "model"
    result = worker("train", *ARGS, "--out", str(out), reports=tmp_path, kill_after=2, restarts=1)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = rank_reports(tmp_path)
    assert reports[0]["restart"] == reports[1]["restart"] == 1
    assert reports[0]["epochs_run"][-1] == 3 and reports[0]["epochs_run"][0] in (2, 3)
    assert reports[0]["digest"] == reports[1]["digest"] == saved_digest(root / "model")


@pytest.mark.parametrize(("n", "world_size", "batch"), [(10, 2, 4), (9, 2, 4), (23, 3, 6), (5, 4, 8), (12, 1, 5)])
def test_shards_split_each_global_batch_evenly(monkeypatch, n, world_size, batch):
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    monkeypatch.setenv("WORLD_SIZE", str(world_size))
    shards = []
    for rank in range(world_size):
        monkeypatch.setenv("RANK", str(rank))
        shards.append(distributed.shard(perm, batch))
    per_rank = batch // world_size
    assert len({len(s) for s in shards}) == 1  # same number of steps everywhere: no collective waits
    for start in range(0, len(shards[0]), per_rank):
        together = torch.cat([s[start : start + per_rank] for s in shards])
        step = start // per_rank
        expected = perm[step * batch : (step + 1) * batch]
        # A step of all ranks sees one process's step; only the last may repeat a few rows to even out.
        assert set(together.tolist()) >= set(expected.tolist())
        assert len(together) - len(expected) < world_size
    assert set(torch.cat(shards).tolist()) == set(range(n))


def test_global_batch_must_split_evenly(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "2")
    assert distributed.local_batch(1026) == 342
    with pytest.raises(ConfigError, match="multiple of 3"):
        distributed.local_batch(1024)


def test_one_process_is_left_alone(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.world() == distributed.World(0, 1, 0)
    assert distributed.is_main()
    perm = torch.arange(7)
    assert distributed.shard(perm, 3) is perm
    assert distributed.all_sum(torch.tensor(2.5), 3) == [2.5, 3.0]
    model = torch.nn.Linear(2, 1)
    assert distributed.wrap(model) is model


def test_bad_torchrun_environment_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ConfigError, match="RANK=2"):
        distributed.world()
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ConfigError, match="RANK='one'"):
        distributed.world()


def _worker() -> None:
    """torchrun's worker for the tests above: the CLI, with a report per rank and an optional kill."""
    from movierec import fitting
    from movierec.cli import main

    reports = Path(os.environ["MOVIEREC_TEST_REPORTS"])
    kill_after = int(os.environ["MOVIEREC_TEST_KILL_AFTER"])
    rank, restart = distributed.world().rank, int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    real_fit = fitting.fit_plan

    def fit(plan, fit_part, val_part, progress):
        epochs_run: list[int] = []
        shown = progress.epoch

        def record(label, row, total) -> None:
            epochs_run.append(row.epoch)
            shown(label, row, total)
            if rank == 1 and restart == 0 and row.epoch == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

        progress.epoch = record
        recommender, fit_report = real_fit(plan, fit_part, val_part, progress)
        report = {"epochs_run": epochs_run, "restart": restart, "digest": digest(recommender.rater.state_dict())}
        (reports / f"rank{rank}.json").write_text(json.dumps(report))
        return recommender, fit_report

    fitting.fit_plan = fit
    sys.argv = ["movierec", *sys.argv[1:]]
    main()


if __name__ == "__main__":
    _worker()
