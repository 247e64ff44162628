"""Training on several processes under ``torchrun``: ranks, the process group, sharding, reductions.

``torchrun --nproc-per-node N -m movierec train ...`` starts N copies of the usual
command; each learns its place from the environment torchrun sets (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``). Without torchrun the world is one process and every
function here is a no-op, so the single-process path is the plain training loop.

What the loop does with N processes, and why:
- every rank builds the same model from the same seed and reads the same ratings; each
  epoch every rank draws the same permutation and takes its own 1/N of each global
  batch (``shard``), so a step of N ranks sees exactly the rows one process would see
  with the same ``--batch-size``;
- dense gradients are averaged by ``DistributedDataParallel``; sparse embedding
  gradients are averaged here by an all-gather of their rows (``average_sparse_grads``),
  because NCCL has no sparse all-reduce. Gloo has one, and it is an all-gather too, so
  both backends run the one path the CPU tests cover, and the optimiser still updates
  only the rows the global batch touched;
- losses and validation errors are summed over ranks (``all_sum``) before they are
  reported or used for early stopping, so every rank takes the same decisions;
- only rank 0 (``is_main``) writes checkpoints, plots and the model.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from movierec.errors import ConfigError


@dataclass(frozen=True)
class World:
    """Where this process stands among those torchrun started."""

    rank: int
    """0 .. world_size - 1, over all nodes; rank 0 writes the outputs."""
    world_size: int
    """Number of processes training together (1 without torchrun)."""
    local_rank: int
    """Rank on this node: picks the GPU, ``cuda:<local_rank>``."""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer; torchrun sets it") from None


def world() -> World:
    """This process's rank, world size and local rank, from torchrun's environment."""
    w = World(_env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0))
    if w.world_size < 1 or not 0 <= w.rank < w.world_size:
        raise ConfigError(f"RANK={w.rank} does not fit WORLD_SIZE={w.world_size}; launch with torchrun")
    return w


def is_main() -> bool:
    """True on the one process that writes files and prints (rank 0, or the only process)."""
    return world().rank == 0


def elastic_restart() -> bool:
    """True when torchrun restarted the workers after a failure (``--max-restarts``)."""
    return _env_int("TORCHELASTIC_RESTART_COUNT", 0) > 0


def start(device: torch.device) -> torch.device:
    """Join the process group (once) and return this rank's device.

    Gloo for CPUs, NCCL for GPUs; a CUDA device becomes ``cuda:<LOCAL_RANK>`` so each
    process on a node has its own GPU. A no-op returning ``device`` for one process.
    """
    w = world()
    if w.world_size == 1:
        return device
    if device.type == "cuda":
        if w.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK {w.local_rank} has no GPU: this node has {torch.cuda.device_count()}; "
                "start at most that many processes per node (--nproc-per-node)"
            )
        device = torch.device("cuda", w.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
        atexit.register(stop)
    return device


def stop() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every rank gets here (no-op for one process)."""
    if dist.is_initialized():
        dist.barrier()


def local_batch(global_batch: int) -> int:
    """Ratings per step on this rank: the global ``--batch-size`` split evenly over the ranks."""
    n = world().world_size
    if global_batch % n:
        raise ConfigError(
            f"--batch-size {global_batch} does not split evenly over {n} processes; use a multiple of {n}"
        )
    return global_batch // n


def shard(perm: Tensor, global_batch: int) -> Tensor:
    """This rank's rows of an epoch's permutation, in step order.

    Step ``s`` of rank ``r`` takes block ``r`` of the ``s``-th global batch, so the ranks
    together see what one process would. The last, short batch is split evenly too,
    padding with rows from the start of the permutation (as ``DistributedSampler``
    does), so every rank runs the same number of steps and no collective waits forever.
    """
    w = world()
    if w.world_size == 1:
        return perm
    per_rank = global_batch // w.world_size
    full = len(perm) // global_batch * global_batch
    head = perm[:full].view(-1, w.world_size, per_rank)[:, w.rank].reshape(-1)
    tail = perm[full:]
    if len(tail) % w.world_size:
        tail = torch.cat([tail, perm[: w.world_size - len(tail) % w.world_size]])
    return torch.cat([head, tail.view(w.world_size, -1)[w.rank]])


def eval_rows(n: int) -> np.ndarray:
    """This rank's share of ``n`` rows to score (every ``world_size``-th); sum the results with ``all_sum``."""
    w = world()
    return np.arange(w.rank, n, w.world_size)


def all_sum(*values: Tensor | float) -> list[float]:
    """Each value summed over all ranks (in float64), as Python floats."""
    flat = torch.stack([torch.as_tensor(v, dtype=torch.float64).detach().reshape(()).cpu() for v in values])
    if dist.is_initialized():
        flat = flat.to(_comm_device())
        dist.all_reduce(flat)
    return flat.cpu().tolist()


def _comm_device() -> torch.device:
    # NCCL reduces only GPU tensors; gloo takes CPU ones.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def agree(value: int, what: str) -> None:
    """Raise on every rank unless every rank holds the same ``value`` (e.g. the epoch to resume from)."""
    if not dist.is_initialized():
        return
    # One MIN reduction of (v, -v) yields both the lowest and the highest value.
    t = torch.tensor([value, -value], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    lowest, highest = int(t[0]), int(-t[1])
    if lowest != highest:
        raise ConfigError(
            f"the processes disagree on {what} ({lowest} to {highest}); for a multi-node run, --out must be "
            "on a filesystem every node sees"
        )


def sparse_parameter_names(model: nn.Module) -> list[str]:
    """Names of parameters that get sparse gradients (embeddings with ``sparse=True``)."""
    return [
        f"{name}.weight" if name else "weight"
        for name, module in model.named_modules()
        if isinstance(module, nn.Embedding | nn.EmbeddingBag) and module.sparse
    ]


def wrap(model: nn.Module) -> nn.Module:
    """The module the loop calls forward on: ``model`` itself, or it wrapped for data parallelism.

    Call everything but forward (penalty, state_dict, saving) on ``model``, never on the
    wrapper: its state dict would carry a ``module.`` prefix. Parameters are made equal
    to rank 0's first, so the ranks start (and, averaging the same gradients, stay) identical.
    """
    if world().world_size == 1:
        return model
    with torch.no_grad():
        for p in model.parameters():
            dist.broadcast(p.data, src=0)
    sparse = sparse_parameter_names(model)
    # DistributedDataParallel would all-reduce the sparse gradients, which NCCL cannot;
    # average_sparse_grads exchanges them instead. (TorchRec excludes its sharded tables the same way.)
    nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, sparse)
    if not any(p.requires_grad for n, p in model.named_parameters() if n not in sparse):
        return model  # nothing dense to average
    device_ids = [next(model.parameters()).device] if next(model.parameters()).is_cuda else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


@torch.no_grad()
def average_sparse_grads(model: nn.Module) -> None:
    """Replace each sparse gradient by its average over the ranks (no-op for one process).

    The average of the ranks' per-batch mean losses is the global batch's mean loss, so
    the averaged gradient is what one process would get for the global batch: its rows
    are the union of the ranks' rows, repeated rows summed when the optimiser coalesces.
    """
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    n = dist.get_world_size()
    params = dict(model.named_parameters())
    for name in sparse_parameter_names(model):
        p = params[name]
        if p.grad is None:
            # Every rank must join the exchange: an untouched table sends no rows.
            grad = torch.sparse_coo_tensor(
                torch.empty(1, 0, dtype=torch.long, device=p.device),
                torch.empty(0, *p.shape[1:], dtype=p.dtype, device=p.device),
                p.shape,
            )
        else:
            grad = p.grad.coalesce()
        rows, values = grad.indices()[0], grad.values()
        counts = torch.tensor([len(rows)], device=p.device)
        all_counts = [torch.empty_like(counts) for _ in range(n)]
        dist.all_gather(all_counts, counts)
        sizes = [int(c) for c in all_counts]
        most = max(sizes)
        # all_gather needs equal shapes: pad to the longest, then trim each part.
        rows_pad = torch.zeros(most, dtype=rows.dtype, device=p.device)
        rows_pad[: len(rows)] = rows
        values_pad = values.new_zeros((most, *values.shape[1:]))
        values_pad[: len(rows)] = values
        got_rows = [torch.empty_like(rows_pad) for _ in range(n)]
        got_values = [torch.empty_like(values_pad) for _ in range(n)]
        dist.all_gather(got_rows, rows_pad)
        dist.all_gather(got_values, values_pad)
        rows = torch.cat([r[:k] for r, k in zip(got_rows, sizes, strict=True)])
        values = torch.cat([v[:k] for v, k in zip(got_values, sizes, strict=True)]) / n
        p.grad = torch.sparse_coo_tensor(rows[None], values, p.shape, check_invariants=False) if len(rows) else None


def finish() -> None:
    """End a run on every rank at once: wait for all, then leave the process group.

    Call it on every rank at the same point (after rank 0 has written its outputs).
    Tearing down one rank's connections while another still works, or leaving it to
    interpreter exit, can abort the job.
    """
    barrier()
    stop()
