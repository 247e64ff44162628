"""The MovieLens releases: where each comes from, how to recognise it, and how to read it.

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

Titles and genres come from the movies file; genres feed the EASE ranker as side information.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from movierec import stored
from movierec.data.ratings import MAX_GENRES, Ratings
from movierec.data.readers import Columns, Source, first_line, read_delimited, split_fields
from movierec.data.tables import RatingScale, declare
from movierec.errors import ConfigError, DataError

BASE_URL = "https://files.grouplens.org/datasets/movielens/"
"""Where GroupLens publishes the zips; ``MOVIEREC_MIRROR`` or ``mirror=`` replaces it."""

GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
"""ml-100k's genres, in the order of u.item's flags (its u.genre file)."""
MAX_FIELD = 1000
"""Longest title or genres field of a movies file (ml-latest-small's longest title has 158 characters)."""
NO_GENRES = {"(no genres listed)", "unknown"}
"""How the releases say a movie has no genre: ml-20m and later, and ml-100k."""

HALF_STARS = RatingScale(0.5, 5.0, 0.5)
WHOLE_STARS = RatingScale(1.0, 5.0, 1.0)


@dataclass(frozen=True)
class Release:
    """One GroupLens release: what to download, how to check it, and how it is laid out."""

    name: str
    """The name users type (``ml-20m``) and the zip's stem on the GroupLens site."""
    folder: str
    """The folder the zip unpacks to (``ml-10M100K`` for ml-10m)."""
    layout: str
    """``100k``, ``dat`` or ``csv``: which files hold the ratings and titles."""
    scale: RatingScale
    """The ratings the release can hold; anything else in its files is an error."""
    sha256: str | None = None
    """SHA-256 of the zip, or None when no value can be pinned (see ``note``)."""
    size: int | None = None
    """Size of the zip in bytes, or None when unknown."""
    md5_published: bool = False
    """GroupLens publishes ``NAME.zip.md5`` next to the zip; used when there is no SHA-256."""
    note: str = ""
    """Why the download cannot be fully verified, when it cannot."""

    @property
    def filename(self) -> str:
        return f"{self.name}.zip"

    def url(self, mirror: str | None = None) -> str:
        return (mirror or BASE_URL).rstrip("/") + "/" + self.filename


RELEASES: dict[str, Release] = {
    r.name: r
    for r in (
        Release(
            "ml-100k", "ml-100k", "100k", WHOLE_STARS,
            "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229", 4924029,
        ),
        Release(
            "ml-1m", "ml-1m", "dat", WHOLE_STARS,
            "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20", 5917549,
        ),
        Release(
            "ml-10m", "ml-10M100K", "dat", HALF_STARS,
            "813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862", 65566137,
        ),
        Release(
            "ml-20m", "ml-20m", "csv", HALF_STARS,
            "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3", 198702078,
        ),
        Release(
            "ml-25m", "ml-25m", "csv", HALF_STARS,
            "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa", 261978986,
        ),
        Release(
            "ml-32m", "ml-32m", "csv", HALF_STARS, md5_published=True,
            note="no SHA-256 is published for ml-32m; checked against the MD5 GroupLens publishes beside it, "
            "which catches a damaged download but not a substituted one",
        ),
        Release(
            "ml-latest", "ml-latest", "csv", HALF_STARS,
            note="ml-latest changes with each GroupLens refresh, so no checksum can be pinned; "
            "the download is checked only for being a readable zip",
        ),
        Release(
            "ml-latest-small", "ml-latest-small", "csv", HALF_STARS,
            "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436", 978202,
        ),
    )
}  # fmt: skip

_BY_FOLDER = {r.folder: r for r in RELEASES.values()}

LAYOUTS = {
    "100k": ("u.data", "u.item"),
    "dat": ("ratings.dat", "movies.dat"),
    "csv": ("ratings.csv", "movies.csv"),
}
"""The ratings file and the titles file of each layout."""

_SPLIT_FILE = re.compile(r"^u([1-5]|a|b)\.(base|test)$")
"""The ML-100K standard splits: u1.base/u1.test ... u5, and ua/ub."""


def get_release(name: str) -> Release:
    """The release called ``name``, or a ``ConfigError`` listing the ones there are."""
    if name not in RELEASES:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(RELEASES)} or synthetic")
    return RELEASES[name]


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


def attach_titles(ratings: Ratings, ids: np.ndarray, titles: list[str], genres: list[str] | None = None) -> Ratings:
    """Ratings with a title (and genres) per item, looked up by raw id; items missing from the list get "".

    Item ids read as names (one id in the ratings that is not a number, ``12O``, makes them
    all names) are matched to the movie ids as written (``"12"``), so one odd id costs its
    own title alone, not every title.
    """
    item_ids = ratings.index.item_ids
    if len(ids) == 0:
        return ratings
    if item_ids.dtype.kind not in "iu":
        ids, item_ids = ids.astype(str), item_ids.astype(str)
    order = np.argsort(ids, kind="stable")
    pos = np.minimum(np.searchsorted(ids[order], item_ids), len(ids) - 1)
    found = ids[order][pos] == item_ids

    def column(values: list[str]) -> np.ndarray:
        return np.where(found, np.array(values, dtype=str)[order][pos], "").astype(str)

    return replace(ratings, titles=column(titles), genres=None if genres is None else column(genres))


def _decode(source: Source, raw: bytes, strict_utf8: bool) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if not strict_utf8:
            return raw.decode("latin-1")  # u.item and ml-1m's movies.dat are Latin-1
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(f"byte {raw[e.start : e.start + 1]!r} is not UTF-8", path=source.label, line=line) from None


def read_titles(source: Source, layout: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Movie ids, titles and genres (``|``-joined, "" for none) from u.item, movies.dat or movies.csv."""
    text = _decode(source, source.read_bytes(), strict_utf8=layout == "csv")
    genre_column = None
    rows: Iterator[tuple[int, list[str]]]
    if layout == "csv":
        rows = _csv_rows(source, text)
        header = [name.strip().lower() for name in next(rows, (0, []))[1]]  # movieId,title,genres
        # Only a column named genres is read as genres: any other third column (an imdbId, a
        # year) would make every value a "genre" of its own.
        genre_column = 2 + header[2:].index("genres") if "genres" in header[2:] else None
    else:
        sep = "|" if layout == "100k" else "::"
        rows = ((number, line.split(sep)) for number, line in enumerate(text.splitlines(), 1))
    ids, titles, genres = [], [], []
    first_line: dict[int, int] = {}  # movie id -> the line that listed it
    for number, fields in rows:
        if fields == [] or fields == [""]:
            continue
        try:
            ids.append(int(fields[0]))
            titles.append(fields[1] if layout != "dat" or len(fields) < 3 else "::".join(fields[1:-1]))
        except (ValueError, IndexError):
            found = f"expected a movie id and a title, found {stored.printable(repr(fields[:2]))[:200]}"
            raise DataError(found, path=source.label, line=number) from None
        if not -(2**63) <= ids[-1] < 2**63:
            raise DataError(f"movie id {ids[-1]} is beyond signed 64-bit integers", path=source.label, line=number)
        if ids[-1] in first_line:
            raise DataError(
                f"movie id {ids[-1]} is listed twice, on lines {first_line[ids[-1]]} and {number}; "
                "keep one row per movie",
                path=source.label,
                line=number,
            )
        first_line[ids[-1]] = number
        found_genres = (g.strip() for g in _genres(fields, layout, genre_column))
        genres.append("|".join(g for g in found_genres if g and g not in NO_GENRES))
        for what, value in (("title", titles[-1]), ("genres field", genres[-1])):
            # Kept as fixed-width strings: one long field would cost its length for every movie.
            if len(value) > MAX_FIELD:
                found = f"a {what} of {len(value):,} characters (at most {MAX_FIELD:,}); is this a movies file?"
                raise DataError(found, path=source.label, line=number)
        # Printed by recommend and the server: no escape sequence in a data file reaches a terminal.
        titles[-1], genres[-1] = stored.printable(titles[-1]), stored.printable(genres[-1])
    _check_genre_count(source, genres)
    return np.array(ids, dtype=np.int64), titles, genres


def _check_genre_count(source: Source, genres: list[str]) -> None:
    """Refuse a genres column of more than ``MAX_GENRES`` distinct values: ids or free text, not genres."""
    names = {g for joined in genres for g in joined.split("|") if g}
    if len(names) > MAX_GENRES:
        raise DataError(
            f"the genres column holds {len(names):,} distinct genres (at most {MAX_GENRES}; MovieLens has 20), "
            "so it is not a list of genres; remove that column or rename its header",
            path=source.label,
        )


def _csv_rows(source: Source, text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of a CSV text, its own errors (an unclosed quote, a huge field) as DataErrors."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    try:
        for fields in reader:
            if reader.line_num > start and any("\n" in f or "\r" in f for f in fields):
                # No MovieLens title spans lines: a quote left open has swallowed the lines after it.
                raise DataError(
                    f'a field runs from line {start} to line {reader.line_num}: a quote (") opened on line {start} '
                    "is not closed; close it, or write a quote inside a title as two quotes",
                    path=source.label,
                    line=start,
                )
            yield start, fields
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(f"not a readable CSV row ({exc})", path=source.label, line=reader.line_num) from None


def _genres(fields: list[str], layout: str, column: int | None) -> list[str]:
    """A movie's genres from its row. Genres are a hint for the ranker, so a row without them
    (a movies file cut to id and title, a flag that is not 0 or 1) has none rather than failing."""
    if layout == "csv":
        return fields[column].split("|") if column is not None and column < len(fields) else []
    if layout == "dat":  # id::title::genres; a title holding "::" leaves the genres last
        return fields[-1].split("|") if len(fields) > 2 else []
    flags = [f.strip() for f in fields[5 : 5 + len(GENRES_100K)]]
    return [name for name, flag in zip(GENRES_100K, flags, strict=False) if flag == "1"]
