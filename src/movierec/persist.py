"""A saved recommender is data, not code: safetensors weights plus a JSON manifest.

Layout of a model directory:
- ``model.safetensors``: the rater's state dict under ``rater.`` and the ranker's under
  ``ranker.``, and the recommender's arrays: ``fallback.user_bias``, ``fallback.item_bias``,
  ``history.indptr``, ``history.items``, ``history.ratings`` (the training ratings by user);
- ``manifest.json``: format version, the rater's and ranker's names and configs, how lists
  are made, global mean, rating scale, raw ids, titles, what it was trained on, the
  versions that wrote it, the SHA-256 of ``model.safetensors`` and ``training_sha256``, the
  fingerprint of the training ratings by content (``data.ratings.fingerprint``).

Writes go to a temporary sibling directory that replaces the target only when complete,
so a failed save never leaves a half-written model or destroys a good one; the target
may only be missing, an empty folder, or a model folder movierec wrote, as the SHA-256 of
each file recorded in its manifest (``files``) shows (``outdir.check_replaceable``).

Loading trusts nothing: the weights must match the manifest's checksum, every tensor's
shape is checked against the models as their configs would build them before any of
it is read, and every value that indexing or arithmetic relies on is checked (ids
unique and sorted, titles one per item, the history's pointers and items in range,
ratings and weights finite, the mean inside the scale, every manifest value of its kind,
range and size: ``manifest``). A directory that fails any check is a ``ModelError``
naming what is wrong.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from movierec import manifest as manifest_file
from movierec import models, outdir, stored
from movierec._version import __version__
from movierec.data.ratings import ByUser, fingerprint
from movierec.errors import ConfigError, ModelError
from movierec.recommend import Recommender
from movierec.sittings import Sittings

FORMAT, FORMAT_VERSION = manifest_file.FORMAT, manifest_file.FORMAT_VERSION
MANIFEST, WEIGHTS = outdir.MANIFEST, manifest_file.WEIGHTS


# --- saving ------------------------------------------------------------------------------

SITTING_ARRAYS = ("user_idx", "start", "end", "shift")
"""A recommender's sitting arrays, saved as ``sessions.<name>``: the format's name, kept so saved models load."""


def save(recommender: Recommender, directory: str | Path, *, extra_files: dict[str, bytes] | None = None) -> Path:
    """Write ``recommender`` to ``directory`` atomically; ``extra_files`` go beside it (metrics, plots)."""
    directory = Path(directory)
    unknown = set(extra_files or ()) - outdir.MODEL_FILES
    if unknown:  # what check_replaceable trusts a model directory to hold
        raise ValueError(f"persist.save writes only {sorted(outdir.MODEL_FILES)}, not {sorted(unknown)}")
    outdir.check_replaceable(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        weights = tmp / WEIGHTS
        save_file(_tensors(recommender), str(weights))
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
        # Every file's digest: what makes the folder one movierec may replace (outdir.check_replaceable).
        files = {f.name: outdir.sha256(f) for f in sorted(tmp.iterdir())}
        manifest = {**_manifest(recommender), "weights_sha256": files[WEIGHTS], "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        _honour_umask(tmp)
        for f in tmp.iterdir():
            outdir.fsync(f)
        _swap_into_place(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _tensors(r: Recommender) -> dict[str, torch.Tensor]:
    def plain(array: np.ndarray, dtype: Any) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype))

    tensors = {f"ranker.{k}": v.detach().cpu().contiguous() for k, v in r.ranker.state_dict().items()}
    if r.rater is not None:
        tensors.update({f"rater.{k}": v.detach().cpu().contiguous() for k, v in r.rater.state_dict().items()})
    tensors["fallback.user_bias"] = plain(r.user_bias, np.float32)
    tensors["fallback.item_bias"] = plain(r.item_bias, np.float32)
    tensors["history.indptr"] = plain(r.history.indptr, np.int64)
    tensors["history.items"] = plain(r.history.items, np.int32)
    tensors["history.ratings"] = plain(r.history.ratings, np.float32)
    if r.sittings is not None:
        for name in SITTING_ARRAYS:
            tensors[f"sessions.{name}"] = plain(getattr(r.sittings, name), np.float32 if name == "shift" else np.int64)
    return tensors


def _manifest(r: Recommender) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rater": None if r.rater is None else {"name": r.rater_name, "config": asdict(r.rater_config)},  # type: ignore[call-overload]
        "ranker": {"name": r.ranker_name, "config": asdict(r.ranker_config)},  # type: ignore[call-overload]
        "lists": asdict(r.lists),
        "sessions": None if r.sittings is None else {"gap": r.sittings.gap, "n": len(r.sittings.start)},
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
        "training_sha256": fingerprint(r.index, r.history),
    }


def _honour_umask(folder: Path) -> None:
    # mkdtemp makes 0700 folders: give the model the permissions any file the user writes gets.
    umask = outdir.umask()
    os.chmod(folder, 0o777 & ~umask)
    for f in folder.iterdir():
        os.chmod(f, 0o666 & ~umask)


def _swap_into_place(tmp: Path, directory: Path) -> None:
    """Replace ``directory`` by ``tmp``; the old one is removed only once the new one is in place."""
    if not directory.exists():
        os.replace(tmp, directory)
        outdir.fsync(directory.parent)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".old", dir=directory.parent))
    os.replace(directory, old / "model")
    os.replace(tmp, directory)
    outdir.fsync(directory.parent)
    shutil.rmtree(old, ignore_errors=True)


# --- loading -------------------------------------------------------------------------------


def load(directory: str | Path, *, device: str = "cpu") -> Recommender:
    """Read a model directory written by ``save``; a missing, corrupt or tampered one is a ``ModelError``."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    weights_path = directory / WEIGHTS
    try:
        if outdir.sha256(weights_path) != manifest.get("weights_sha256"):
            raise ModelError(
                f"{weights_path}: its SHA-256 is not the one the manifest recorded; the model directory is "
                "corrupt or was changed after training, retrain it"
            )
        return _load_checked(directory, manifest, weights_path, device)
    except ModelError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, ConfigError, SafetensorError, OSError) as exc:
        raise ModelError(
            f"{directory}: the manifest and weights do not fit together ({exc}); retrain the model"
        ) from None


def read_manifest(directory: Path) -> dict:
    """The manifest of a model directory, checked to be a movierec manifest of this format."""
    return manifest_file.read(directory)


def _load_checked(directory: Path, manifest: dict, weights_path: Path, device: str) -> Recommender:
    bad = manifest_file.Checker(directory)
    index = bad.index(manifest)
    n_users, n_items = index.n_users, index.n_items
    if manifest.get("n_users") != n_users or manifest.get("n_items") != n_items:
        bad.fail(
            f"n_users/n_items ({stored.kind(manifest.get('n_users'))}, {stored.kind(manifest.get('n_items'))}) "
            "differ from the id lists"
        )
    scale = bad.value(stored.scale, manifest.get("rating_scale"))
    global_mean = bad.value(stored.number, manifest.get("global_mean"), "global_mean", *scale)
    titles = bad.titles(manifest.get("titles"), n_items)
    lists = bad.lists(bad.field(manifest, "lists", dict))
    ranker_spec, ranker_config = _spec_and_config(bad, manifest, "ranker", "ranker")
    rater_part = manifest.get("rater")
    rater_spec, rater_config = (None, None) if rater_part is None else _spec_and_config(bad, manifest, "rater", "rater")

    # Shapes first, from the file's header and from models built on the meta device: a
    # manifest asking for a huge model is refused before anything is allocated.
    unused = torch.Generator()  # builds draw their start on the meta device: nothing is drawn
    with torch.device("meta"):
        ranker_meta = ranker_spec.build(ranker_config, n_users, n_items, unused)
        rater_meta = None if rater_spec is None else rater_spec.build(rater_config, n_users, n_items, unused)
    with safe_open(str(weights_path), framework="pt") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    nnz = shapes.get("history.items", (None,))[0]
    expected = {
        "fallback.user_bias": (n_users,),
        "fallback.item_bias": (n_items,),
        "history.indptr": (n_users + 1,),
        "history.items": (nnz,),
        "history.ratings": (nnz,),
    }
    sitting_part = manifest.get("sessions")
    if sitting_part is not None:
        if not isinstance(sitting_part, dict) or not all(
            type(sitting_part.get(k)) is int and sitting_part[k] >= 0 for k in ("n", "gap")
        ):
            bad.fail(f"manifest sessions must be null or give a count n and a gap in seconds, got {sitting_part!r}")
        expected.update({f"sessions.{k}": (sitting_part["n"],) for k in SITTING_ARRAYS})
    for prefix, meta in (("ranker.", ranker_meta), ("rater.", rater_meta)):
        if meta is not None:
            expected.update({prefix + k: tuple(v.shape) for k, v in meta.state_dict().items()})
    # Rankers fitted before the scale's floor was kept weighed ratings by r / r_max: a floor of 0.
    legacy_floor = "ranker.rating_floor" in expected and "ranker.rating_floor" not in shapes
    if legacy_floor:
        shapes["ranker.rating_floor"] = ()
    bad.shapes(shapes, expected)

    tensors = load_file(str(weights_path), device="cpu")
    if legacy_floor:
        tensors["ranker.rating_floor"] = torch.zeros(())
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad.fail(f"tensor {name} holds NaN or infinite values")
    history = ByUser(
        tensors["history.indptr"].numpy(), tensors["history.items"].numpy(), tensors["history.ratings"].numpy()
    )
    bad.history(history, n_items, scale)
    recorded = manifest.get("training_sha256")  # None in models saved before it was recorded
    if recorded is not None and recorded != fingerprint(index, history):
        bad.fail("the training ratings do not match the fingerprint the manifest recorded")

    ranker = ranker_spec.build(ranker_config, n_users, n_items, torch.Generator().manual_seed(0))
    ranker.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("ranker.")})
    rater = None
    if rater_spec is not None:
        rater = rater_spec.build(rater_config, n_users, n_items, torch.Generator().manual_seed(0))
        rater.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("rater.")})
        rater.to(device).eval()
    sittings = None
    if sitting_part is not None:
        sittings = Sittings(**{k: tensors[f"sessions.{k}"].numpy() for k in SITTING_ARRAYS}, gap=sitting_part["gap"])
    try:
        for model in (ranker, rater):
            if model is not None:
                model.check()
        if sittings is not None:
            sittings.check(n_users)
    except ValueError as exc:
        bad.fail(str(exc))
    return Recommender(
        ranker=ranker.to(device).eval(),
        ranker_name=ranker_spec.name,
        ranker_config=ranker_config,
        rater=rater,
        rater_name=None if rater_spec is None else rater_spec.name,
        rater_config=rater_config,
        index=index,
        history=history,
        global_mean=float(global_mean),
        scale=scale,
        user_bias=tensors["fallback.user_bias"].numpy(),
        item_bias=tensors["fallback.item_bias"].numpy(),
        titles=titles,
        info=_printable(manifest.get("info")) if isinstance(manifest.get("info"), dict) else {},
        lists=lists,
        sittings=sittings,
    )


def _printable(value: Any) -> Any:
    """``value`` with every string in it made printable (``stored.printable``)."""
    if isinstance(value, str):
        return stored.printable(value)
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable(v) for v in value]
    return value


def _spec_and_config(
    bad: manifest_file.Checker, manifest: dict, key: str, kind: str
) -> tuple[models.ModelSpec, object]:
    part = bad.field(manifest, key, dict)
    spec = models.get(part.get("name"))  # an unknown name is a ConfigError, reported as a corrupt dir
    if spec.kind != kind:
        bad.fail(f"manifest {key} {spec.name!r} is a {spec.kind}, not a {kind}")
    return spec, spec.saved_config(bad.field(part, "config", dict, f"{key}.config"))
