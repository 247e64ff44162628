"""The one way in: a release name, ``synthetic``, or a path to a zip, folder or file, as ``Ratings``.

Whatever the source, the result has been checked (no missing cells, ratings on the
scale, one rating per user and item) and comes from the parse cache when the files
have not changed since they were last read.
"""

from __future__ import annotations

import errno
import zipfile
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

from movierec.data import cache, movielens, releases
from movierec.data.download import fetch
from movierec.data.ratings import Ratings
from movierec.data.readers import read_ratings_file
from movierec.data.synthetic import generate
from movierec.errors import ConfigError, DataError, os_reason
from movierec.stored import MAX_SCALE

CACHE_MIN_BYTES = 1 << 20
"""Sources smaller than this are parsed every time: it takes milliseconds, and keeps tests'
temporary files out of the cache."""


def load(
    data: str | Path | None = None,
    *,
    dataset: str | None = None,
    cache_dir: str | Path | None = None,
    user_col: str | None = None,
    item_col: str | None = None,
    rating_col: str | None = None,
    time_col: str | None = None,
    rating_range: tuple[float, float] | None = None,
    progress: bool = False,
    use_cache: bool = True,
) -> Ratings:
    """Read ratings from ``data`` (a path) or ``dataset`` (a release name or ``"synthetic"``).

    ``dataset`` downloads the release into ``cache_dir`` on first use. ``data`` may be a
    GroupLens zip, its unpacked folder, a folder holding that, a single MovieLens file
    (``u1.base``...), or any CSV/TSV/Parquet ratings file, whose columns the ``*_col``
    arguments name. ``rating_range=(lo, hi)`` replaces the scale ratings are checked
    against (a release's own, or 0.5..5 for other files) and is kept as the log's scale. ``progress`` shows the download
    bar; ``use_cache=False`` parses every time. Bad data raises ``DataError`` naming the
    file and line; bad arguments raise ``ConfigError``.
    """
    if rating_range is not None:
        lo, hi = rating_range
        if not (-MAX_SCALE <= lo < hi <= MAX_SCALE):  # also refuses NaN and infinities
            raise ConfigError(
                f"--rating-range must be LO,HI with LO < HI, both finite and within +-{MAX_SCALE:g}, got {lo:g},{hi:g}"
            )
    if data is not None and dataset is not None:
        raise ConfigError("pass either --data PATH or --dataset NAME, not both")
    if dataset == "synthetic":
        return generate().ratings
    if dataset is not None:
        path = fetch(dataset, cache_dir, progress)
    elif data is not None:
        path = Path(data).expanduser()
    else:
        names = ", ".join([*releases.RELEASES, "synthetic"])
        raise ConfigError(f"no data given: pass --data PATH or --dataset NAME ({names})")
    if not path.exists():
        try:  # exists() is False for a link loop or a forbidden folder too: say which
            path.stat()
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise DataError(f"cannot open it ({os_reason(exc)}); check the path", path=str(path)) from None
        raise DataError("no such file or folder; check the path", path=str(path))
    if not (path.is_file() or path.is_dir()):
        raise DataError(
            "not a regular file or folder (a pipe, device or socket); point --data at a ratings file or a folder",
            path=str(path),
        )
    try:
        if path.is_dir():
            next(path.iterdir(), None)
        else:
            path.open("rb").close()
    except PermissionError:
        raise DataError("permission denied: movierec cannot read it; check its permissions", path=str(path)) from None

    columns = {"user": user_col, "item": item_col, "rating": rating_col, "time": time_col}
    try:
        return _read(path, columns, rating_range, use_cache, cache_dir)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise DataError(f"the archive is corrupt ({exc}); download it again", path=str(path)) from None
    except OSError as exc:
        if isinstance(exc, PermissionError | FileNotFoundError):
            raise  # named by the OS, with the file's own path
        # A truncated .gz ("Truncated compressed stream"), an I/O error from the disk.
        raise DataError(f"cannot read it ({exc}); the file may be truncated or damaged", path=str(path)) from None


def _read(
    path: Path,
    columns: dict[str, str | None],
    rating_range: tuple[float, float] | None,
    use_cache: bool,
    cache_dir: str | Path | None,
) -> Ratings:
    """``path``'s ratings, from the cache when it holds them."""
    found = movielens.find(path)
    params: dict[str, object] = {"rating_range": rating_range}
    build: Callable[[], Ratings]
    if found is None:
        if path.is_file():
            with path.open("rb") as f:
                if f.read(4) == b"PK\x03\x04":  # a zip's first entry, but zipfile found no archive: cut short
                    raise DataError("a zip archive that is cut short or damaged; download it again", path=str(path))
        files, params["columns"] = [path], columns
        build = partial(
            read_ratings_file, path, **{f"{k}_col": v for k, v in columns.items()}, rating_range=rating_range
        )
    else:
        if any(columns.values()):
            flags = ", ".join(f"--{k}-col" for k, v in columns.items() if v)
            raise ConfigError(f"{path} is MovieLens data with known columns; {flags} applies only to other files")
        files, params["member"] = found.files(), found.ratings.member
        build = partial(movielens.read, found, rating_range=rating_range)
    if not use_cache or sum(f.stat().st_size for f in files) < CACHE_MIN_BYTES:
        return build()
    return cache.cached(files, params, build, cache_dir)
