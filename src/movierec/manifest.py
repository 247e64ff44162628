"""Reading a model directory's manifest.json and metrics.json, trusting none of it.

Every value goes through ``stored`` (kinds, ranges, sizes), so a manifest that was edited
(a candidates count of 50.5, a gate of "no", a scale up to 1e308, a 5,000-digit number, a
title of millions of characters or with a lone surrogate) is a ``ModelError`` naming the
field when the model is loaded, never a traceback or a 500 later. Titles and other text
lose their control characters here, as they do when a movies file is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from movierec import stored
from movierec.data.ids import IdIndex
from movierec.data.ratings import ByUser
from movierec.errors import ModelError
from movierec.recommend import ListConfig

FORMAT = "movierec-model"
FORMAT_VERSION = 2
MANIFEST, WEIGHTS, METRICS = "manifest.json", "model.safetensors", "metrics.json"
MAX_MANIFEST_BYTES = 1 << 30
"""A manifest larger than this (1 GiB: ids and titles of ~20M items) is refused unread."""
MAX_METRICS_BYTES = 1 << 26
"""metrics.json holds a history of epochs: 64 MiB is far beyond any run's."""


def read(directory: Path) -> dict:
    """The manifest of a model directory, checked to be a movierec manifest of this format."""
    manifest_path, weights_path = directory / MANIFEST, directory / WEIGHTS
    if not manifest_path.is_file() or not weights_path.is_file():
        raise ModelError(
            f"{directory} is not a movierec model directory (expected {MANIFEST} and {WEIGHTS}); "
            "train one with: movierec train --out DIR"
        )
    manifest = _json(manifest_path, MAX_MANIFEST_BYTES)
    if not isinstance(manifest, dict):
        raise ModelError(f"{manifest_path}: not a JSON object; the model directory is corrupt, retrain it")
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{manifest_path}: format {stored.kind(manifest.get('format'))} version "
            f"{stored.kind(manifest.get('format_version'))} is not {FORMAT!r} version {FORMAT_VERSION}; "
            "retrain with this movierec"
        )
    try:
        stored.utf8(manifest, "the manifest")
    except stored.Invalid as exc:
        raise ModelError(f"{manifest_path}: {exc}; the model directory is corrupt, retrain it") from None
    return manifest


def read_metrics(directory: Path) -> Any:
    """metrics.json of a model directory, None when the run wrote none; a ``ModelError`` when damaged."""
    path = directory / METRICS
    if not path.is_file():
        return None
    metrics = _json(path, MAX_METRICS_BYTES)
    try:
        stored.utf8(metrics, METRICS)
    except stored.Invalid as exc:
        raise ModelError(f"{path}: {exc}; the model directory is corrupt, retrain it") from None
    return metrics


def _json(path: Path, max_bytes: int) -> Any:
    try:
        return stored.read_json(path, max_bytes)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read it ({exc.strerror})") from None
    except stored.Invalid as exc:
        raise ModelError(f"{path}: {exc}; the model directory is corrupt, retrain it") from None


class Checker:
    """The value checks of loading a model, each failing with a ModelError that names the directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def fail(self, what: str) -> NoReturn:
        raise ModelError(f"{self.directory}: {what}; the model directory is corrupt, retrain it")

    def field(self, part: dict, key: str, kind: type, name: str | None = None) -> Any:
        """``part[key]``, which must be a ``kind`` (``name``: how the message spells the field)."""
        value = part.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            self.fail(f"manifest field {name or key!r} must be {_KINDS[kind]}, got {stored.kind(value)}")
        return value

    def value(self, parse: Any, *args: Any) -> Any:
        """``parse(*args)`` of ``stored``, its ``Invalid`` as this directory's ModelError."""
        try:
            return parse(*args)
        except stored.Invalid as exc:
            self.fail(f"manifest field {exc}")

    def index(self, manifest: dict) -> IdIndex:
        """The id lists: ints within 64 bits, or short strings without control characters; unique and sorted."""
        for key in ("user_ids", "item_ids"):
            ids = self.field(manifest, key, list)
            if not ids or not (all(type(i) is int for i in ids) or all(type(i) is str for i in ids)):
                self.fail(f"{key} must be a non-empty list of whole numbers or of strings")
            if type(ids[0]) is int and not all(-(2**63) <= i < 2**63 for i in ids):
                self.fail(f"{key} holds an id beyond signed 64-bit integers")
            if type(ids[0]) is str and any(len(i) > stored.MAX_TEXT or stored.has_controls(i) for i in ids):
                self.fail(f"{key} holds an id over {stored.MAX_TEXT} characters or with control characters")
        index = IdIndex.from_json(manifest)
        for kind, arr in (("user", index.user_ids), ("item", index.item_ids)):
            if len(arr) > 1 and not bool(np.all(arr[1:] > arr[:-1])):
                self.fail(f"{kind}_ids must be unique and sorted")
        return index

    def titles(self, value: object, n_items: int) -> np.ndarray | None:
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != n_items:
            self.fail(f"titles must be a list of {n_items} strings, one per item")
        return np.asarray([self.value(stored.text, t, "titles") for t in value], dtype=str)

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

    def lists(self, value: object) -> ListConfig:
        return self.value(stored.config, ListConfig, value, "lists")


_KINDS: dict[type, str] = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
}
"""How a message names what a JSON value must be, by the Python type ``json`` reads it as."""
