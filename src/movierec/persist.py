"""A saved model is data, not code: safetensors weights plus a JSON manifest.

Layout of a model directory:
- ``model.safetensors``: the model's state dict under ``model.``, and the recommender's
  arrays (``fallback.user_bias``, ``fallback.item_bias``, ``seen.indptr``, ``seen.items``,
  and ``seen.ratings`` when the recommender has the training ratings' values);
- ``manifest.json``: format version, model name and config, global mean, rating scale,
  raw ids, titles, what it was trained on, and the versions that wrote it.

Writes go to a temporary sibling directory that replaces the target only when complete,
so a failed save never leaves a half-written model or destroys a good one.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from movierec import models
from movierec._version import __version__
from movierec.data.ids import IdIndex
from movierec.errors import ModelError
from movierec.recommend import Recommender

FORMAT = "movierec-model"
FORMAT_VERSION = 1


def save(recommender: Recommender, directory: str | Path, *, extra_files: dict[str, bytes] | None = None) -> Path:
    """Write ``recommender`` to ``directory`` atomically; ``extra_files`` go beside it (metrics, plots)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in recommender.model.state_dict().items()}
        tensors["fallback.user_bias"] = torch.from_numpy(np.ascontiguousarray(recommender.user_bias, np.float32))
        tensors["fallback.item_bias"] = torch.from_numpy(np.ascontiguousarray(recommender.item_bias, np.float32))
        tensors["seen.indptr"] = torch.from_numpy(np.ascontiguousarray(recommender.seen_indptr, np.int64))
        tensors["seen.items"] = torch.from_numpy(np.ascontiguousarray(recommender.seen_items, np.int32))
        if recommender.seen_ratings is not None:
            tensors["seen.ratings"] = torch.from_numpy(np.ascontiguousarray(recommender.seen_ratings, np.float32))
        save_file(tensors, str(tmp / "model.safetensors"))
        (tmp / "manifest.json").write_text(json.dumps(_manifest(recommender), indent=1))
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
        _swap_into_place(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _swap_into_place(tmp: Path, directory: Path) -> None:
    """Replace ``directory`` by ``tmp``; the old one is removed only once the new one is in place."""
    if not directory.exists():
        os.replace(tmp, directory)
        return
    old = directory.with_name(f".{directory.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def _manifest(r: Recommender) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": r.model_name,
        "model_config": asdict(r.model_config),  # type: ignore[call-overload]
        "n_users": r.index.n_users,
        "n_items": r.index.n_items,
        "global_mean": r.global_mean,
        "rating_scale": list(r.scale),
        "info": r.info or {},
        "versions": {
            "movierec": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        **r.index.to_json(),
        "titles": None if r.titles is None else [str(t) for t in r.titles],
    }


def load(directory: str | Path, *, device: str = "cpu") -> Recommender:
    """Read a model directory written by ``save``; a missing or corrupt one is a ``ModelError``."""
    directory = Path(directory)
    manifest_path = directory / "manifest.json"
    weights_path = directory / "model.safetensors"
    if not manifest_path.is_file() or not weights_path.is_file():
        raise ModelError(
            f"{directory} is not a movierec model directory (expected manifest.json and model.safetensors); "
            "train one with: movierec train --out DIR"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(
            f"{manifest_path}: not valid JSON ({exc}); the model directory is corrupt, retrain it"
        ) from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{manifest_path}: format {manifest.get('format')!r} version {manifest.get('format_version')!r} "
            f"is not {FORMAT!r} version {FORMAT_VERSION}; retrain with this movierec"
        )
    try:
        tensors = load_file(str(weights_path), device=device)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise ModelError(f"{weights_path}: cannot read the weights ({exc}); the model directory is corrupt") from None
    try:
        spec = models.get(manifest["model"])
        config = spec.config_type(**manifest["model_config"])
        index = IdIndex.from_json(manifest)
        model = spec.build(config, index.n_users, index.n_items, torch.Generator().manual_seed(0))
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        model.to(device).eval()
        titles = manifest.get("titles")
        return Recommender(
            model=model,
            model_name=spec.name,
            model_config=config,
            index=index,
            global_mean=float(manifest["global_mean"]),
            scale=(float(manifest["rating_scale"][0]), float(manifest["rating_scale"][1])),
            user_bias=tensors["fallback.user_bias"].cpu().numpy(),
            item_bias=tensors["fallback.item_bias"].cpu().numpy(),
            seen_indptr=tensors["seen.indptr"].cpu().numpy(),
            seen_items=tensors["seen.items"].cpu().numpy(),
            seen_ratings=tensors["seen.ratings"].cpu().numpy() if "seen.ratings" in tensors else None,
            titles=None if titles is None else np.asarray(titles, dtype=str),
            info=manifest.get("info"),
        )
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelError(
            f"{directory}: the manifest and weights do not fit together ({exc}); retrain the model"
        ) from None
