"""The MovieLens movies files: each movie's title and genres, from u.item, movies.dat or movies.csv.

Genres feed the EASE ranker as side information; titles are what lists show. Which file a
release keeps them in is ``movierec.data.movielens``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from movierec import stored
from movierec.data.ratings import MAX_GENRES, Ratings
from movierec.data.readers import Source
from movierec.errors import DataError

GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
"""ml-100k's genres, in the order of u.item's flags (its u.genre file)."""
MAX_FIELD = 1000
"""Longest title or genres field of a movies file (ml-latest-small's longest title has 158 characters)."""
NO_GENRES = {"(no genres listed)", "unknown"}
"""How the releases say a movie has no genre: ml-20m and later, and ml-100k."""


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
