"""The one training loop for every model, and the settings it runs under.

``run`` is the outer loop: per sweep (an epoch) the model's own step, a validation RMSE,
a history row, progress, a checkpoint and early stopping, then the best state back.
Every model goes through it; what a sweep is comes from the model: ``GradientSteps``
(``movierec.gradient``) is a shuffled pass of zero_grad / forward / loss / backward / step for the torch
models trained by gradients, which vary it only through ``penalty`` (their regulariser);
models fitted otherwise (least squares, sampling, closed forms, rankers) supply their
own ``Sweeps`` (see ``movierec.models.base``).

Under torchrun the same loop runs on every rank; the few ``distributed.`` lines wrap the
model, shard each epoch's rows, average sparse gradients, sum the reported figures and
keep checkpoint writing to rank 0 (see ``movierec.distributed``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from movierec import checkpoints, distributed
from movierec.data.ratings import Ratings
from movierec.errors import ConfigError
from movierec.gradient import GradientSteps
from movierec.models.base import ModelSpec, RaterData, RatingModel, Sweeps, predict_centred
from movierec.optim import OPTIMIZERS, make_optimizer
from movierec.progress import Phase


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
    def for_model(cls, spec: ModelSpec | None, n_train: int | None = None, **overrides: object) -> TrainConfig:
        """The model's defaults (for ``n_train`` training ratings, when known), then any non-None
        ``overrides`` (the CLI's flags). ``spec`` None (no rater): the plain defaults."""
        names = {f.name for f in fields(cls)}
        unknown = set(overrides) - names
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(sorted(unknown))}")
        given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        if spec is None:
            return cls(**given)
        sized = spec.training_by_size(n_train) if spec.training_by_size and n_train is not None else {}
        return cls(**{**spec.training, **sized, **given})


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


@dataclass(frozen=True)
class Epoch:
    """One row of a fit's history: what one sweep did."""

    epoch: int
    """1 for the first sweep."""
    train_loss: float | None
    """Mean squared error of the centred training ratings plus the model's penalty; None for rankers."""
    val_rmse: float | None
    """RMSE of the clipped predictions on the validation part; None without one (or for rankers)."""
    seconds: float
    """Wall time of the sweep (and, on the last row, of the fit's finish)."""
    val_ndcg: float | None = None
    """A ranker's NDCG@10 on the validation part after the sweep; None for raters, or with no validation."""

    @classmethod
    def of(cls, row: object) -> Epoch:
        """A row read back from JSON (a checkpoint); ValueError if it is not one."""
        names = {f.name for f in fields(cls)}
        # A checkpoint written before val_ndcg existed lacks it, and means None.
        if not isinstance(row, dict) or not names - {"val_ndcg"} <= set(row) <= names:
            needed = ", ".join(sorted(names - {"val_ndcg"}))
            raise ValueError(f"a history row must have the fields {needed} (and may have val_ndcg)")
        epoch, seconds = row["epoch"], row["seconds"]
        numbers = [row[k] for k in ("train_loss", "val_rmse", "val_ndcg") if row.get(k) is not None] + [seconds]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            raise ValueError(f"a history row's epoch must be a positive whole number, got {epoch!r}")
        if any(isinstance(x, bool) or not isinstance(x, int | float) for x in numbers):
            raise ValueError("a history row's loss, RMSE and seconds must be numbers")
        return cls(**row)


def as_json(history: list[Epoch]) -> list[dict]:
    """The history as JSON-ready dicts (metrics.json, the manifest)."""
    return [asdict(row) for row in history]


def stalled(history: list[Epoch], patience: int) -> bool:
    """True when the last ``patience`` epochs brought no better validation figure (RMSE, or a ranker's NDCG)."""
    scores = [loss for loss in map(_loss, history) if loss is not None]
    if len(scores) <= patience:
        return False
    return min(scores[-patience:]) >= min(scores[:-patience])


def _loss(row: Epoch) -> float | None:
    """What early stopping lowers: the validation RMSE, or minus a ranker's validation NDCG; None for NaN."""
    loss = -row.val_ndcg if row.val_ndcg is not None else row.val_rmse
    return None if loss is None or math.isnan(loss) else loss


def best_epoch(history: list[Epoch]) -> Epoch | None:
    """The row ``run`` keeps the state of: the first with the lowest validation loss (None if none has one)."""
    scored = [h for h in history if _loss(h) is not None]
    return min(scored, key=_loss) if scored else None  # type: ignore[arg-type, return-value]


Checkpoint = Callable[[list[Epoch], float, dict | None], None]
"""Called after each epoch with (history, best validation loss (RMSE, or minus NDCG), best state or None)."""


def run(
    model: torch.nn.Module,
    fitter: Sweeps,
    epochs: int,
    *,
    validate: Callable[[], float | None] = lambda: None,
    rank: Callable[[], float] | None = None,
    patience: int | None = None,
    on_epoch: Callable[[Epoch], None] | None = None,
    resumed: tuple[list[Epoch], float, dict | None] | None = None,
    checkpoint: Checkpoint | None = None,
) -> list[Epoch]:
    """Fit ``model`` by ``fitter``'s sweeps (``epochs`` of them unless it plans its own number).

    With ``patience``, stops after that many sweeps without a better validation RMSE and
    restores the best sweep's state. ``rank`` (a ranker's fit) gives the validation NDCG@10
    after each sweep, and then it, not the RMSE, is what must improve. ``resumed``
    continues a checkpointed run from its history, best RMSE and best state.
    """
    sweeps = fitter.planned or epochs
    if patience is not None and not fitter.stops_early:
        raise ConfigError(
            "patience does not apply to this model: it is whole only after its last sweep (a sampler's "
            "mean, a blend's weights); set the number of sweeps with --epochs instead"
        )
    history, best, best_state = resumed if resumed is not None else ([], math.inf, None)
    for epoch in range(len(history), sweeps):
        started = time.perf_counter()
        train_loss = fitter.sweep(epoch)
        val_rmse = fitter.finish(validate) if epoch == sweeps - 1 else None
        if val_rmse is None:  # no finish, or one that left the model as the sweep did
            val_rmse = fitter.val_rmse() if fitter.validates_itself else validate()
        seconds = time.perf_counter() - started  # the sweep's own time: ranking the validation part is not fitting
        row = Epoch(epoch + 1, train_loss, val_rmse, seconds, None if rank is None else rank())
        history.append(row)
        if on_epoch:
            on_epoch(row)
        loss = _loss(row)
        if loss is not None and loss < best:
            best = loss
            if patience is not None:
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if checkpoint is not None:
            checkpoint(history, best, best_state)
        if patience is not None and stalled(history, patience):
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def _resume(
    directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None
) -> tuple[list[Epoch], float, dict | None] | None:
    """The checkpoint in ``directory`` loaded into model and optimiser, or None if there is none."""
    if not (directory / checkpoints.META).exists():
        return None
    _, rows, best_rmse, best_state = checkpoints.load(directory, model, optimizer)
    try:
        return [Epoch.of(row) for row in rows], best_rmse, best_state
    except ValueError as exc:
        raise ConfigError(checkpoints.damaged(directory, str(exc))) from None


def _saver(
    directory: Path,
    name: str,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    config: TrainConfig,
    data: dict,
) -> Checkpoint:
    def save(history: list[Epoch], best_rmse: float, best_state: dict | None) -> None:
        if distributed.is_main():
            checkpoints.save(directory, name, model, optimizer, as_json(history), best_rmse, best_state, config, data)
        distributed.barrier()  # no rank starts the next epoch before the checkpoint of this one is written

    return save


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
    phase: Phase | None = None,
    label: str | None = None,
) -> list[Epoch]:
    """Train the rater ``model`` in place on ``fit``; returns one history row per epoch (sweep).

    With ``patience`` set, the weights of the best validation epoch are restored at the
    end. Models whose state is all in the model (and optimiser) write a checkpoint to
    ``checkpoint_dir`` after every epoch and continue from it with ``resume``. ``phase``
    (the caller's, of ``config.epochs`` parts) hears of each epoch, as ``label`` (the model's name).
    """
    device = distributed.start(resolve_device(config.device))  # under torchrun: this rank's device
    model.to(device)
    fit_cols = _columns(fit, global_mean, device)
    val_share = val.take(distributed.eval_rows(len(val))) if val is not None and len(val) else None
    val_cols = _columns(val_share, global_mean, device) if val_share is not None else None

    def validate() -> float | None:
        return _rmse_on(model, val_cols, scale, global_mean)

    fitter: Sweeps
    if spec.sweeps is not None:
        # Under torchrun every rank fits the same data the same deterministic way, so the
        # ranks agree without exchanging weights; only validation is shared out.
        full_val = _columns(val, global_mean, device) if val is not None and len(val) else None
        data = RaterData(
            *fit_cols,
            generator=torch.Generator().manual_seed(config.seed),
            val=full_val,
            bounds=(scale[0] - global_mean, scale[1] - global_mean),
        )
        fitter = spec.sweeps(model, model_config, data)
    else:
        optimizer = make_optimizer(
            config.optimizer, list(model.parameters()), config.lr, config.momentum, config.weight_decay
        )
        fitter = GradientSteps(model, optimizer, fit_cols, config, phase)

    resumed, save = None, None
    if checkpoint_dir is not None and fitter.resumable:
        resumed = _resume(checkpoint_dir, model, fitter.optimizer) if resume else None
        distributed.agree(len(resumed[0]) if resumed else 0, "the epoch to resume from")
        save = _saver(checkpoint_dir, spec.name, model, fitter.optimizer, config, checkpoints.fingerprint(fit))

    return run(
        model,
        fitter,
        config.epochs,
        validate=validate,
        patience=config.patience,
        on_epoch=None if phase is None else phase.sweeps(label or spec.name, fitter.planned or config.epochs),
        resumed=resumed,
        checkpoint=save,
    )
