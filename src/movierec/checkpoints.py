"""Checkpoints of a run in progress: everything needed to resume, in ``<out>.partial/``.

A checkpoint is a plain dict: the model's weights (and the best epoch's, with early
stopping) and the optimiser's state, if the fit has one, in ``checkpoint.safetensors``; the epoch, history,
settings and a fingerprint of the training data in ``checkpoint.json``. Both are
written to ``.tmp`` names and renamed, weights first, so the JSON is the commit: a run
killed mid-write leaves the previous checkpoint whole.

``check`` decides, before any training, whether ``--resume`` can continue from what is
there: the same model, the same settings (but the epoch budget) and the same data; a
damaged checkpoint is a clear error, never a traceback.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from movierec import outdir, stored
from movierec.data.ratings import Ratings
from movierec.errors import ConfigError

WEIGHTS, META = "checkpoint.safetensors", "checkpoint.json"
MAX_META_BYTES = 1 << 26
"""checkpoint.json holds settings and a history of epochs: 64 MiB is far beyond any run's."""
FILES = (WEIGHTS, META, WEIGHTS + ".tmp", META + ".tmp")
"""Every name a run may leave in its checkpoint folder (the .tmp ones if killed mid-write)."""


def fingerprint(fit: Ratings) -> dict:
    """What identifies the training data cheaply: sizes and sums of the index columns and ratings."""
    return {
        "n_users": fit.n_users,
        "n_items": fit.n_items,
        "n": len(fit),
        "user_sum": int(fit.user_idx.astype(np.int64).sum()),
        "item_sum": int(fit.item_idx.astype(np.int64).sum()),
        "rating_sum": round(float(fit.rating.astype(np.float64).sum()), 3),
    }


def save(
    directory: Path,
    model_name: str,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    history: list[dict],
    best_rmse: float,
    best_state: dict | None,
    config: object,
    data: dict,
) -> None:
    """Everything needed to resume, written atomically: a crash leaves the previous checkpoint."""
    directory.mkdir(parents=True, exist_ok=True)
    outdir.check_own_folder(directory, "checkpoint folder")  # made by this run, not a link planted since
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    if best_state is not None:
        tensors.update({f"best.{k}": v.contiguous() for k, v in best_state.items()})
    opt = optimizer.state_dict() if optimizer is not None else {"state": {}, "param_groups": []}
    scalars: dict[str, dict] = {}
    for pid, state in opt["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value.detach().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    meta = {
        "model": model_name,
        "epoch": len(history),
        "history": history,
        "best_rmse": best_rmse if math.isfinite(best_rmse) else None,
        "param_groups": opt["param_groups"],
        "optim_scalars": scalars,
        "config": asdict(config),  # type: ignore[call-overload]
        "data": data,
    }
    # Each file made in a private folder and renamed into place (no planted link is followed);
    # weights first, then the JSON that points at them: the JSON is the commit.
    with outdir.atomic_file(directory / WEIGHTS) as tmp:
        save_file({k: v.cpu() for k, v in tensors.items()}, str(tmp))
    with outdir.atomic_file(directory / META) as tmp:
        tmp.write_text(json.dumps(meta))


def load(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> tuple:
    """(epoch, history, best RMSE, best state or None) of the checkpoint, loaded into model and optimiser."""
    meta = _meta(directory)
    device = next(model.parameters()).device
    try:
        tensors = load_file(str(directory / WEIGHTS), device=str(device))
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
        state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, pid, name = key.split(".", 2)
                state.setdefault(int(pid), {})[name] = value
        for pid, extra in meta["optim_scalars"].items():
            state.setdefault(int(pid), {}).update(extra)
        if optimizer is not None:
            _check_groups(meta["param_groups"], optimizer.param_groups)
            optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        best_rmse = meta["best_rmse"] if meta["best_rmse"] is not None else math.inf
        return meta["epoch"], meta["history"], best_rmse, best
    except (SafetensorError, OSError, RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(damaged(directory, str(exc))) from None


def _check_groups(saved: object, fresh: list[dict]) -> None:
    """Refuse optimiser settings not of the kind a fresh optimiser's are (an lr of "fast", a NaN
    momentum): the optimiser would take them and fail, or diverge, in the middle of training."""
    if not isinstance(saved, list) or len(saved) != len(fresh) or not all(isinstance(g, dict) for g in saved):
        raise ValueError(f"param_groups must be a list of {len(fresh)} settings objects")
    for group, new in zip(saved, fresh, strict=True):
        for key, value in new.items():
            if key == "params":
                ok = isinstance(group.get(key), list) and len(group[key]) == len(value)
                ok = ok and all(type(p) is int for p in group[key])
            elif isinstance(value, bool) or value is None:
                ok = group.get(key) is None or isinstance(group.get(key), bool)
            elif isinstance(value, int | float):
                ok = _finite(group.get(key)) and (key != "lr" or group[key] > 0)
            elif isinstance(value, tuple | list):
                ok = isinstance(group.get(key), list) and len(group[key]) == len(value)
                ok = ok and all(_finite(v) for v in group[key])
            else:
                ok = isinstance(group.get(key), str) and len(group[key]) <= 100
            if not ok:
                raise ValueError(f"the optimiser setting {key} is {stored.kind(group.get(key))}")


def _finite(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def check(directory: Path, model: str, config: object, data: dict) -> None:
    """Refuse ``--resume`` unless ``directory`` holds a whole checkpoint of this model, settings and data."""
    if not (directory / META).exists():
        raise ConfigError(f"--resume: no checkpoint in {directory}; start the run without --resume")
    meta = _meta(directory)
    if meta.get("model") != model:
        raise ConfigError(
            f"--resume: the checkpoint in {directory} is of model {meta.get('model')!r}, not {model!r}; "
            "rerun with that --model or without --resume"
        )
    saved_config = meta.get("config")
    saved: dict = saved_config if isinstance(saved_config, dict) else {}
    # Everything but the epoch budget must match, or the resumed run is a different run.
    differing = [k for k, v in asdict(config).items() if k != "epochs" and saved.get(k) != v]  # type: ignore[call-overload]
    if differing:
        raise ConfigError(
            f"--resume: the checkpoint in {directory} was trained with different settings "
            f"({', '.join(differing)}); rerun with the same flags or without --resume"
        )
    if meta.get("data") != data:
        raise ConfigError(
            f"--resume: the checkpoint in {directory} was trained on other data (or another split); "
            "rerun with the same data and --seed, or without --resume"
        )
    if not (directory / WEIGHTS).is_file():
        raise ConfigError(damaged(directory, f"{WEIGHTS} is missing"))


def check_ours(directory: Path) -> None:
    """Refuse a fresh run whose checkpoint folder holds, under a checkpoint's names, files no run wrote.

    The run would write over them and delete them when done; an earlier run's checkpoint
    (an interrupted run not resumed) is its own to replace.
    """
    for name, reads in ((META, _meta), (WEIGHTS, _weights_open)):
        path = directory / name
        if not path.exists() and not path.is_symlink():
            continue
        try:
            ours = path.is_file() and not path.is_symlink() and reads(directory) is not None
        except (ConfigError, OSError, SafetensorError):
            ours = False
        if not ours:
            raise ConfigError(
                f"{path} is not a checkpoint movierec wrote, and a run would write over it; move it away "
                "or train to another --out"
            )


def _weights_open(directory: Path) -> bool:
    with safe_open(str(directory / WEIGHTS), framework="pt"):
        return True


def remove(directory: Path) -> None:
    """Delete the checkpoint files a run wrote, and the folder if nothing else is in it."""
    for name in FILES:
        (directory / name).unlink(missing_ok=True)
    if directory.exists() and not any(directory.iterdir()):
        directory.rmdir()


def _meta(directory: Path) -> dict:
    try:
        meta = stored.read_json(directory / META, MAX_META_BYTES)
    except (OSError, stored.Invalid) as exc:
        raise ConfigError(damaged(directory, str(exc))) from None
    needed = ("model", "epoch", "history", "best_rmse", "param_groups", "optim_scalars", "config")
    if not isinstance(meta, dict) or any(k not in meta for k in needed):
        raise ConfigError(damaged(directory, f"{META} lacks the fields a checkpoint has"))
    epoch, history = meta["epoch"], meta["history"]
    # The epoch counts the history's rows; anything else was not written by a run.
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not isinstance(history, list) or epoch != len(history):
        raise ConfigError(damaged(directory, f"its epoch {epoch!r} does not match its history of the epochs run"))
    scalars = meta["optim_scalars"]
    if not isinstance(scalars, dict) or not all(
        isinstance(v, dict) and all(_finite(x) or isinstance(x, bool) for x in v.values()) for v in scalars.values()
    ):
        raise ConfigError(damaged(directory, "its optimiser state holds values that are not numbers"))
    if meta["best_rmse"] is not None and not _finite(meta["best_rmse"]):
        raise ConfigError(damaged(directory, f"its best RMSE is {stored.kind(meta['best_rmse'])}"))
    return meta


def damaged(directory: Path, why: str) -> str:
    return (
        f"--resume: the checkpoint in {directory} is damaged ({why}); start the run again without --resume "
        f"(it starts over and replaces {directory})"
    )
