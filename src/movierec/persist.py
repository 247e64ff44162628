"""A saved recommender is data, not code: safetensors weights plus a JSON manifest.

Layout of a model directory:
- ``model.safetensors``: the rater's state dict under ``rater.`` and the ranker's under
  ``ranker.``, and the recommender's arrays: ``fallback.user_bias``, ``fallback.item_bias``,
  ``history.indptr``, ``history.items``, ``history.ratings`` (the training ratings by user);
- ``manifest.json``: format version, the rater's and ranker's names and configs, how lists
  are made, global mean, rating scale, raw ids, titles, what it was trained on, the
  versions that wrote it, and the SHA-256 of ``model.safetensors``.

Writes go to a temporary sibling directory that replaces the target only when complete,
so a failed save never leaves a half-written model or destroys a good one; the target
may only be missing, an empty folder, or a model folder movierec wrote, as the SHA-256 of
each file recorded in its manifest (``files``) shows (``outdir.check_replaceable``).

Loading trusts nothing: the weights must match the manifest's checksum, every tensor's
shape is checked against the models as their configs would build them before any of
it is read, and every value that indexing or arithmetic relies on is checked (ids
unique and sorted, titles one per item, the history's pointers and items in range,
ratings and weights finite, the mean inside the scale). A directory that fails any
check is a ``ModelError`` naming what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from movierec import models, outdir
from movierec._version import __version__
from movierec.data.ids import IdIndex
from movierec.data.ratings import ByUser
from movierec.errors import ConfigError, ModelError
from movierec.recommend import ListConfig, Recommender
from movierec.sittings import Sittings

FORMAT = "movierec-model"
FORMAT_VERSION = 2
MANIFEST, WEIGHTS = outdir.MANIFEST, "model.safetensors"
MAX_MANIFEST_BYTES = 1 << 30
"""A manifest larger than this (1 GiB: ids and titles of ~20M items) is refused unread."""


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
        files = {f.name: _sha256(f) for f in sorted(tmp.iterdir())}
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
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
        if _sha256(weights_path) != manifest.get("weights_sha256"):
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
    manifest_path, weights_path = directory / MANIFEST, directory / WEIGHTS
    if not manifest_path.is_file() or not weights_path.is_file():
        raise ModelError(
            f"{directory} is not a movierec model directory (expected {MANIFEST} and {WEIGHTS}); "
            "train one with: movierec train --out DIR"
        )
    try:
        if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ModelError(f"{manifest_path}: over {MAX_MANIFEST_BYTES >> 20} MiB; not a manifest movierec wrote")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"{manifest_path}: cannot read it ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ModelError(
            f"{manifest_path}: not valid JSON ({reason}); the model directory is corrupt, retrain it"
        ) from None
    if not isinstance(manifest, dict):
        raise ModelError(f"{manifest_path}: not a JSON object; the model directory is corrupt, retrain it")
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{manifest_path}: format {manifest.get('format')!r} version {manifest.get('format_version')!r} "
            f"is not {FORMAT!r} version {FORMAT_VERSION}; retrain with this movierec"
        )
    return manifest


def _load_checked(directory: Path, manifest: dict, weights_path: Path, device: str) -> Recommender:
    bad = _Checker(directory)
    bad.field(manifest, "user_ids", list)
    bad.field(manifest, "item_ids", list)
    index = IdIndex.from_json(manifest)
    bad.ids(index)
    n_users, n_items = index.n_users, index.n_items
    if manifest.get("n_users") != n_users or manifest.get("n_items") != n_items:
        bad.fail(f"n_users/n_items ({manifest.get('n_users')!r}, {manifest.get('n_items')!r}) differ from the id lists")
    scale = bad.scale(manifest.get("rating_scale"))
    global_mean = manifest.get("global_mean")
    if not isinstance(global_mean, int | float) or not scale[0] <= global_mean <= scale[1]:
        bad.fail(f"global_mean {global_mean!r} is not a number inside the rating scale {scale}")
    titles = manifest.get("titles")
    if titles is not None and (not isinstance(titles, list) or len(titles) != n_items):
        bad.fail(f"titles must be a list of {n_items} strings, one per item")
    lists = ListConfig(**bad.field(manifest, "lists", dict))
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
    bad.shapes(shapes, expected)

    tensors = load_file(str(weights_path), device="cpu")
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad.fail(f"tensor {name} holds NaN or infinite values")
    history = ByUser(
        tensors["history.indptr"].numpy(), tensors["history.items"].numpy(), tensors["history.ratings"].numpy()
    )
    bad.history(history, n_items, scale)

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
        titles=None if titles is None else np.asarray([str(t) for t in titles], dtype=str),
        info=manifest.get("info") if isinstance(manifest.get("info"), dict) else {},
        lists=lists,
        sittings=sittings,
    )


def _spec_and_config(bad: _Checker, manifest: dict, key: str, kind: str) -> tuple[models.ModelSpec, object]:
    part = bad.field(manifest, key, dict)
    spec = models.get(part.get("name"))  # an unknown name is a ConfigError, reported as a corrupt dir
    if spec.kind != kind:
        bad.fail(f"manifest {key} {spec.name!r} is a {spec.kind}, not a {kind}")
    return spec, spec.saved_config(bad.field(part, "config", dict, f"{key}.config"))


class _Checker:
    """The value checks of ``load``, each failing with a ModelError that names the directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def fail(self, what: str) -> NoReturn:
        raise ModelError(f"{self.directory}: {what}; the model directory is corrupt, retrain it")

    def field(self, part: dict, key: str, kind: type, name: str | None = None) -> Any:
        """``part[key]``, which must be a ``kind`` (``name``: how the message spells the field)."""
        value = part.get(key)
        if not isinstance(value, kind):
            self.fail(f"manifest field {name or key!r} must be {_JSON_KINDS[kind]}, got {_json_kind(value)}")
        return value

    def ids(self, index: IdIndex) -> None:
        for kind, ids in (("user", index.user_ids), ("item", index.item_ids)):
            if ids.ndim != 1 or len(ids) == 0:
                self.fail(f"{kind}_ids must be a non-empty list of ids")
            if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
                self.fail(f"{kind}_ids must be unique and sorted")

    def scale(self, value: object) -> tuple[float, float]:
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(x, int | float) for x in value)):
            self.fail(f"rating_scale must be [lo, hi], got {value!r}")
        lo, hi = float(value[0]), float(value[1])  # type: ignore[index]
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            self.fail(f"rating_scale {value!r} must be finite with lo <= hi")
        return lo, hi

    def shapes(self, found: dict[str, tuple], expected: dict[str, tuple]) -> None:
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        if missing or extra:
            self.fail(f"the weights lack {missing[:5]} or have unexpected {extra[:5]}")
        for name, shape in expected.items():
            # A dimension of 0 in the built model is one the data sets (knn's stored residuals).
            if len(shape) != len(found[name]) or any(e != f for e, f in zip(shape, found[name], strict=True) if e):
                self.fail(f"tensor {name} has shape {found[name]}, but the manifest's config gives {shape}")

    def history(self, history: ByUser, n_items: int, scale: tuple[float, float]) -> None:
        indptr, items, ratings = history.indptr, history.items, history.ratings
        if indptr[0] != 0 or indptr[-1] != len(items) or bool(np.any(np.diff(indptr) < 0)):
            self.fail("history.indptr must rise from 0 to the number of training ratings")
        if len(items) and (int(items.min()) < 0 or int(items.max()) >= n_items):
            self.fail("history.items holds item indices out of range")
        if len(ratings) and (float(ratings.min()) < scale[0] or float(ratings.max()) > scale[1]):
            self.fail("history.ratings holds ratings outside the rating scale")


_JSON_KINDS: dict[type, str] = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
}
"""How a message names what a JSON value is, by the Python type ``json`` reads it as."""


def _json_kind(value: object) -> str:
    return "null" if value is None else _JSON_KINDS.get(type(value), type(value).__name__)
