"""A binary cache of parsed ratings, so a second read of a big file takes a second, not ten.

Each entry is a folder of ``.npy`` arrays (index columns, ratings, times, raw ids, titles, genres)
and a ``meta.json`` naming the source files with their size and modification time: a
source that changed since misses the cache and is parsed again. Arrays are saved and
loaded with ``allow_pickle=False`` (string ids as fixed-width unicode), so reading the
cache never runs code. Entries are written to a temporary folder and renamed into place,
so a crash never leaves a half-written entry that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from movierec.data.ids import IdIndex
from movierec.data.ratings import Ratings

FORMAT = 4
"""Bumped whenever what is stored (or how it is parsed) changes, so old entries are ignored."""

_ARRAYS = ("user_idx", "item_idx", "rating", "timestamp", "titles", "genres")


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """Where movierec keeps downloads and parsed data: the argument, ``$MOVIEREC_CACHE``,
    or ``~/.cache/movierec``."""
    chosen = cache_dir or os.environ.get("MOVIEREC_CACHE") or Path.home() / ".cache" / "movierec"
    return Path(chosen).expanduser()


def fingerprint(files: Sequence[Path]) -> list[list]:
    """What identifies each file's contents cheaply: absolute path, size, mtime in ns."""
    out = []
    for f in files:
        st = Path(f).stat()
        out.append([str(Path(f).resolve()), st.st_size, st.st_mtime_ns])
    return out


def entry_dir(files: Sequence[Path], params: dict, cache_dir: str | Path | None = None) -> Path:
    """The folder for these files read with these ``params`` (same files, same folder)."""
    ident = json.dumps([[str(Path(f).resolve()) for f in files], params], sort_keys=True, default=str)
    return cache_root(cache_dir) / "parsed" / hashlib.sha256(ident.encode()).hexdigest()[:24]


def save(ratings: Ratings, folder: Path, meta: dict) -> None:
    """Write ``ratings`` as plain arrays plus ``meta.json`` into ``folder`` (which must not exist)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    try:
        arrays = {name: getattr(ratings, name) for name in _ARRAYS}
        arrays["user_ids"], arrays["item_ids"] = ratings.index.user_ids, ratings.index.item_ids
        for name, arr in arrays.items():
            if arr is not None:
                arr = np.asarray(arr)
                # Python strings as fixed-width unicode: object arrays would need pickle.
                np.save(tmp / f"{name}.npy", arr.astype(str) if arr.dtype == object else arr, allow_pickle=False)
        stored = sorted(name for name, arr in arrays.items() if arr is not None)
        meta = {**meta, "format": FORMAT, "name": ratings.name, "implicit": ratings.implicit, "arrays": stored}
        meta.update(scale=None if ratings.scale is None else list(ratings.scale), step=ratings.step)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if folder.exists():  # a stale entry: move it aside first, as rename cannot replace a folder
            old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".old-"))
            folder.rename(old / "entry")
            shutil.rmtree(old, ignore_errors=True)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load(folder: Path) -> Ratings:
    """Read an entry written by ``save``; raises OSError or ValueError if it is damaged."""
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"cache format {meta.get('format')} is not {FORMAT}")
    arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False) for name in meta["arrays"]}
    return Ratings(
        user_idx=arrays["user_idx"],
        item_idx=arrays["item_idx"],
        rating=arrays["rating"],
        timestamp=arrays.get("timestamp"),
        index=IdIndex(arrays["user_ids"], arrays["item_ids"]),
        titles=arrays.get("titles"),
        genres=arrays.get("genres"),
        name=meta["name"],
        implicit=bool(meta["implicit"]),
        scale=None if meta.get("scale") is None else (float(meta["scale"][0]), float(meta["scale"][1])),
        step=None if meta.get("step") is None else float(meta["step"]),
    )


def _is_fresh(folder: Path, stamp: list) -> bool:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("format") == FORMAT and meta.get("sources") == stamp


def cached(
    files: Sequence[Path], params: dict, build: Callable[[], Ratings], cache_dir: str | Path | None = None
) -> Ratings:
    """``build()``'s result for ``files``, from the cache when they have not changed since.

    ``params`` holds everything else the result depends on (columns, rating range); a
    different value is a different entry. A cache that cannot be written (read-only
    disk, full disk) costs speed, not correctness: the parsed ratings are returned anyway.
    """
    folder = entry_dir(files, params, cache_dir)
    stamp = fingerprint(files)
    if _is_fresh(folder, stamp):
        try:
            return load(folder)
        except (OSError, ValueError, KeyError, EOFError):
            pass  # a damaged entry (an empty .npy after a crash: EOFError): parse again and replace it
    ratings = build()
    try:
        save(ratings, folder, {"sources": stamp, "params": params})
    except OSError as e:
        warnings.warn(f"could not write the parse cache in {folder.parent}: {e}", stacklevel=2)
    return ratings
