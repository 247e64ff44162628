"""The MovieLens file layouts: how to recognise a release on disk, and how to read it.

A release may be given as the zip GroupLens ships, as the folder it unpacks to, or as a
folder holding that folder; single files (``u.data``, ``u1.base``, ``ratings.dat``,
``ratings.csv``) work too and pick up the titles file beside them. Three layouts cover
every release:

- ``100k``: ``u.data`` (tab-separated user item rating timestamp, no header) and
  ``u.item`` (``id|title|release date|video date|url|`` then 19 genre flags, Latin-1);
- ``dat``: ``ratings.dat`` and ``movies.dat`` (``id::title::Genre|Genre``), fields separated
  by ``::`` (ml-1m, ml-10m);
- ``csv``: ``ratings.csv`` (``userId,movieId,rating,timestamp``) and ``movies.csv``
  (``movieId,title,genres``, titles quoted when they hold commas).

Titles and genres come from the movies file (``movierec.data.movies``); which releases there
are and how their zips are checked is ``movierec.data.releases``.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from movierec.data.movies import attach_titles, read_titles
from movierec.data.ratings import Ratings
from movierec.data.readers import Columns, Source, first_line, read_delimited, split_fields
from movierec.data.releases import HALF_STARS, RELEASES, WHOLE_STARS
from movierec.data.tables import RatingScale, declare
from movierec.errors import DataError

_BY_FOLDER = {r.folder: r for r in RELEASES.values()}
"""The releases by the folder their zip unpacks to: a folder of that name is that release."""

LAYOUTS = {
    "100k": ("u.data", "u.item"),
    "dat": ("ratings.dat", "movies.dat"),
    "csv": ("ratings.csv", "movies.csv"),
}
"""The ratings file and the titles file of each layout."""

_SPLIT_FILE = re.compile(r"^u([1-5]|a|b)\.(base|test)$")
"""The ML-100K standard splits: u1.base/u1.test ... u5, and ua/ub."""


@dataclass(frozen=True)
class Found:
    """What a path turned out to hold: a ratings file in a known layout, and its titles."""

    layout: str
    ratings: Source
    titles: Source | None
    name: str
    """The release name, or the file or folder name when it is not a known release."""
    scale: RatingScale
    known: bool = False
    """True for a release GroupLens publishes (its own folder): its scale is the data's declared scale."""

    def files(self) -> list[Path]:
        """The files on disk that the data comes from (what a parse cache keys on)."""
        paths = [self.ratings.path] + ([self.titles.path] if self.titles else [])
        return list(dict.fromkeys(paths))


def _found(layout: str, ratings: Source, titles: Source | None, folder: str, file_name: str | None = None) -> Found:
    release = _BY_FOLDER.get(folder)
    # ratings.dat outside a known folder may be ml-1m (whole stars) or ml-10m (half stars): allow both.
    scale = release.scale if release else (WHOLE_STARS if layout == "100k" else HALF_STARS)
    name = file_name or (release.name if release else folder)
    return Found(layout, ratings, titles, name, scale, release is not None)


def _in_zip(path: Path) -> Found:
    with zipfile.ZipFile(path) as zf:
        members = set(zf.namelist())
    for layout, (ratings, titles) in LAYOUTS.items():
        for member in sorted(members):
            parts = member.split("/")
            if parts[-1] == ratings and len(parts) <= 2:
                folder = parts[0] if len(parts) == 2 else path.stem
                titles_member = member[: -len(ratings)] + titles
                titles_src = Source(path, titles_member) if titles_member in members else None
                return _found(layout, Source(path, member), titles_src, folder)
    raise DataError("the zip holds no MovieLens ratings file (u.data, ratings.dat or ratings.csv)", path=str(path))


def _in_folder(path: Path) -> Found | None:
    for layout, (ratings, titles) in LAYOUTS.items():
        if (path / ratings).is_file():
            titles_path = path / titles
            titles_src = Source(titles_path) if titles_path.is_file() else None
            return _found(layout, Source(path / ratings), titles_src, path.name)
    return None


def _single_file(path: Path) -> Found | None:
    name = path.name
    if name == "ratings.csv" and not first_line(Source(path)).startswith("userId,movieId,rating"):
        return None  # a ratings.csv of some other shape: the general reader takes it
    for layout, (ratings, titles) in LAYOUTS.items():
        if name == ratings or (layout == "100k" and _SPLIT_FILE.match(name)):
            titles_path = path.parent / titles
            titles_src = Source(titles_path) if titles_path.is_file() else None
            # Named after the release only when it is the release's own ratings file.
            whole = name == ratings and path.parent.name in _BY_FOLDER
            return _found(layout, Source(path), titles_src, path.parent.name, None if whole else name)
    return None


def find(path: str | Path) -> Found | None:
    """Recognise a MovieLens release (zip, folder, parent folder or single file), else None.

    None means "not MovieLens": the caller reads the path as an ordinary ratings file.
    """
    path = Path(path)
    if path.is_file():
        return _in_zip(path) if zipfile.is_zipfile(path) else _single_file(path)
    if not path.is_dir():
        raise DataError("no such file or folder", path=str(path))
    found = _in_folder(path)
    if found:
        return found
    inner = [f for sub in sorted(path.iterdir()) if sub.is_dir() and (f := _in_folder(sub))]
    if len(inner) == 1:
        return inner[0]
    if inner:
        raise DataError(f"holds several MovieLens releases ({', '.join(f.name for f in inner)}); pass one of them")
    raise DataError(
        "no ratings file here: expected u.data, ratings.dat or ratings.csv (or a folder holding one); "
        "to read another file, pass the file itself",
        path=str(path),
    )


# --- reading -------------------------------------------------------------------------

_RATING_COLUMNS = Columns("userId", "movieId", "rating", "timestamp")


def read(found: Found, *, rating_range: tuple[float, float] | None = None) -> Ratings:
    """Read a recognised release, titles attached; ``rating_range`` overrides its known scale."""
    scale = found.scale if rating_range is None else RatingScale(*rating_range)
    hint = f"{found.name} ratings are {found.scale.describe()}; pass --rating-range LO,HI to accept others"
    columns = _RATING_COLUMNS
    names = list(columns.fields().values())
    if found.layout == "csv":
        header = split_fields(first_line(found.ratings), ",")
        if header[:3] != names[:3]:
            raise DataError(
                f"expected the MovieLens header {','.join(names)}, found {','.join(header)}",
                path=found.ratings.label,
                line=1,
            )
        names, delimiter = header, ","
        if "timestamp" not in header:
            columns = replace(columns, time=None)
    else:
        delimiter = "\t" if found.layout == "100k" else "::"
    ratings = read_delimited(
        found.ratings,
        delimiter=delimiter,
        header=found.layout == "csv",
        names=names,
        columns=columns,
        scale=scale,
        name=found.name,
        hint=hint,
    )
    if rating_range is not None or found.known:
        ratings = declare(ratings, scale)
    if found.titles is None:
        return ratings
    ids, titles, genres = read_titles(found.titles, found.layout)
    return attach_titles(ratings, ids, titles, genres)
