"""The one training loop for every torch model, and the settings it runs under.

Reads top to bottom in execution order: data to the device, optimiser, then per epoch
a shuffled pass of zero_grad / forward / loss / backward / step, a validation RMSE, a
checkpoint, and early stopping. Models vary it only through ``penalty`` (their
regulariser) or, for models not trained by gradient steps, their own ``fit``.

Under torchrun the same loop runs on every rank; the few ``distributed.`` lines wrap the
model, shard each epoch's rows, average sparse gradients, sum the reported figures and
keep checkpoint writing to rank 0 (see ``movierec.distributed``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from movierec import checkpoints, distributed
from movierec.data.ratings import Ratings
from movierec.errors import ConfigError, MovierecError
from movierec.models.base import FitContext, ModelSpec, RatingModel, predict_centred, stalled
from movierec.optim import OPTIMIZERS, make_optimizer


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained; a model's spec supplies its own defaults for most fields."""

    epochs: int = 20
    """Passes over the training ratings (the most; early stopping may end sooner)."""
    batch_size: int = 1024
    """Ratings per gradient step."""
    lr: float = 0.01
    """Learning rate."""
    optimizer: str = "sgd"
    """``sgd`` (momentum) or ``adam``; both update embedding rows lazily, only when they are in the batch."""
    momentum: float = 0.0
    """Momentum of ``sgd``."""
    weight_decay: float = 0.0
    """L2 penalty applied by the optimiser to every parameter it updates."""
    patience: int | None = None
    """Stop after this many epochs without a better validation RMSE and keep the best; None: never stop early."""
    seed: int = 0
    """Seeds initialisation and shuffling: same seed, data and device give the same model."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu`` or ``cuda``."""

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch size must be at least 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"the learning rate must be a positive number, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError("patience must be at least 1 (or None to never stop early)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"--seed must be a whole number from 0 to 2**63 - 1, got {self.seed!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"unknown device {self.device!r}; use auto, cpu or cuda")

    @classmethod
    def for_model(cls, spec: ModelSpec, **overrides: object) -> TrainConfig:
        """The model's defaults, then any non-None ``overrides`` (the CLI's flags)."""
        names = {f.name for f in fields(cls)}
        unknown = set(overrides) - names
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(sorted(unknown))}")
        chosen = {**spec.training, **{k: v for k, v in overrides.items() if v is not None}}
        return cls(**chosen)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but PyTorch sees no CUDA GPU here; use --device cpu")
    return torch.device(name)


def _columns(
    ratings: Ratings, global_mean: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    users = torch.from_numpy(ratings.user_idx.astype(np.int64)).to(device)
    items = torch.from_numpy(ratings.item_idx.astype(np.int64)).to(device)
    target = torch.from_numpy(ratings.rating - np.float32(global_mean)).to(device)
    return users, items, target


def _rmse_on(model: RatingModel, cols: tuple[torch.Tensor, ...] | None, scale: tuple[float, float], mean: float):
    if cols is None:
        return None
    users, items, target = cols
    # Squared errors and counts are summed over ranks, each holding a share of the rows.
    sse = torch.zeros((), dtype=torch.float64)
    if len(users):
        pred = (predict_centred(model, users, items) + mean).clamp(*scale)
        sse = torch.sum((pred - (target + mean)).double() ** 2)
    sse_all, count = distributed.all_sum(sse, len(users))
    return math.sqrt(sse_all / count)


def _shuffle(n: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    # Seeded per epoch, so a resumed run shuffles exactly as an uninterrupted one.
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return torch.from_numpy(perm).to(device)


def train(
    model: RatingModel,
    spec: ModelSpec,
    model_config: object,
    fit: Ratings,
    val: Ratings | None,
    config: TrainConfig,
    *,
    global_mean: float,
    scale: tuple[float, float],
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Train ``model`` in place on ``fit``; returns one history row per epoch.

    Each row has ``epoch``, ``train_loss`` (mean squared error of centred ratings plus
    the model's penalty, averaged over the epoch's batches), ``val_rmse`` (clipped
    predictions on ``val``) and ``seconds``. With ``patience`` set, the weights of the
    best validation epoch are restored at the end.
    """
    device = distributed.start(resolve_device(config.device))  # under torchrun: this rank's device
    model.to(device)
    fit_cols = _columns(fit, global_mean, device)
    val_share = val.take(distributed.eval_rows(len(val))) if val is not None and len(val) else None
    val_cols = _columns(val_share, global_mean, device) if val_share is not None else None

    def validate() -> float | None:
        return _rmse_on(model, val_cols, scale, global_mean)

    if spec.fit is not None:
        # Under torchrun every rank fits the same data the same deterministic way, so the
        # ranks agree without exchanging weights; only validation is shared out.
        generator = torch.Generator().manual_seed(config.seed)
        users, items, target = fit_cols
        full_val = _columns(val, global_mean, device) if val is not None and len(val) else None
        shown: list[dict] = []

        def report(row: dict) -> None:
            shown.append(row)
            if on_epoch:
                on_epoch(row)

        ctx = FitContext(
            users,
            items,
            target,
            validate,
            generator,
            epochs=config.epochs,
            patience=config.patience,
            val=full_val,
            report=report,
        )
        fitted = spec.fit(model, model_config, ctx)
        for row in fitted:
            if on_epoch and not any(row is r for r in shown):
                on_epoch(row)
        return fitted

    optimizer = make_optimizer(
        config.optimizer, list(model.parameters()), config.lr, config.momentum, config.weight_decay
    )
    history: list[dict] = []
    best_rmse, best_state = math.inf, None
    start_epoch = 0
    if resume and checkpoint_dir is not None and (checkpoint_dir / checkpoints.META).exists():
        start_epoch, history, best_rmse, best_state = checkpoints.load(checkpoint_dir, model, optimizer)
    distributed.agree(start_epoch, "the epoch to resume from")
    net = distributed.wrap(model)  # forward goes through ``net``; everything else uses ``model``
    batch_size = distributed.local_batch(config.batch_size)

    users, items, target = fit_cols
    n = len(target)
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        model.train()
        perm = distributed.shard(_shuffle(n, config.seed, epoch, device), config.batch_size)
        # Shuffled once per epoch, so each batch is a slice: gathering every batch's rows from
        # the 15M-long columns costs a cache miss per row (1.2 s an epoch at batch 1024).
        e_users, e_items, e_target = users[perm], items[perm], target[perm]
        total, steps = torch.zeros((), device=device), 0
        for s in range(0, len(perm), batch_size):
            b_users, b_items = e_users[s : s + batch_size], e_items[s : s + batch_size]
            optimizer.zero_grad(set_to_none=True)
            pred = net(b_users, b_items)
            loss = torch.nn.functional.mse_loss(pred, e_target[s : s + batch_size]) + model.penalty(b_users, b_items)
            loss.backward()
            distributed.average_sparse_grads(model)
            optimizer.step()
            total += loss.detach()
            steps += 1
            if progress and steps % 50 == 0:
                progress("step", min(s + batch_size, len(perm)), len(perm))
        loss_sum, all_steps = distributed.all_sum(total, steps)  # the mean over every rank's steps
        train_loss = loss_sum / max(all_steps, 1)
        if not math.isfinite(train_loss):
            raise MovierecError(
                f"training diverged at epoch {epoch + 1} (loss {train_loss}); lower --lr (now {config.lr})"
            )
        val_rmse = validate()
        row = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "val_rmse": val_rmse,
            "seconds": time.perf_counter() - started,
        }
        history.append(row)
        if on_epoch:
            on_epoch(row)
        if val_rmse is not None and val_rmse < best_rmse:
            best_rmse = val_rmse
            if config.patience is not None:
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if checkpoint_dir is not None and distributed.is_main():
            checkpoints.save(
                checkpoint_dir,
                spec.name,
                model,
                optimizer,
                history,
                best_rmse,
                best_state,
                config,
                checkpoints.fingerprint(fit),
            )
        distributed.barrier()  # no rank starts the next epoch before the checkpoint of this one is written
        if config.patience is not None and stalled(history, config.patience):
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history
