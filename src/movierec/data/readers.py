"""Reading a ratings log from CSV, TSV or Parquet, with errors that say where and how to fix.

Reading is fast path first: pyarrow parses with explicit column types on every core, and
the checks (missing cells, rating scale, repeated pairs) are whole-array numpy operations.
Only when something is wrong does a slower pass work out the line a text editor would
show, so a clean 20M-row file never pays for diagnosis.

Raw ids that are all integers are read as integers (MovieLens ids); otherwise they stay
strings. A file is never partly read: a bad row stops the read with a ``DataError``.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq

from movierec.data import diagnose
from movierec.data.ratings import Ratings
from movierec.data.tables import DEFAULT_SCALE, RatingScale, declare, to_ratings
from movierec.errors import DataError

ALIASES = {
    "user": ("userId", "user_id", "user", "userid"),
    "item": ("movieId", "movie_id", "itemId", "item_id", "item", "movie", "itemid", "movieid"),
    "rating": ("rating", "ratings", "score"),
    "time": ("timestamp", "time", "ts", "datetime"),
}
"""Header names recognised without a flag (compared case-insensitively)."""

FLAGS = {"user": "--user-col", "item": "--item-col", "rating": "--rating-col", "time": "--time-col"}
"""The CLI flag that names each column, quoted in error messages."""


GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Source:
    """A file to read: a plain path, or a member of a zip archive (as GroupLens ships releases)."""

    path: Path
    member: str | None = None

    @property
    def label(self) -> str:
        """How error messages name it: the path, or ``archive.zip/folder/file``."""
        return str(self.path) if self.member is None else f"{self.path}/{self.member}"

    @property
    def name(self) -> str:
        return Path(self.member).name if self.member else self.path.name

    @property
    def gzipped(self) -> bool:
        """True for a gzip-compressed file, whatever its name (read through as text)."""
        if self.member is not None:
            return False
        with open(self.path, "rb") as f:
            return f.read(2) == GZIP_MAGIC

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        if self.member is None:
            with open(self.path, "rb") as raw:
                if raw.read(2) == GZIP_MAGIC:
                    raw.seek(0)
                    with gzip.open(raw) as f:
                        yield f  # type: ignore[misc]
                    return
                raw.seek(0)
                yield raw
        else:
            with zipfile.ZipFile(self.path) as zf, zf.open(self.member) as f:
                yield f  # type: ignore[misc]

    def read_bytes(self) -> bytes:
        with self.open() as f:
            return f.read()

    def arrow_input(self) -> str | pa.BufferReader | pa.NativeFile:
        """What pyarrow reads: a path it can open itself, a decompressing stream, or the unzipped member."""
        if self.member is not None:
            return pa.BufferReader(self.read_bytes())
        return pa.input_stream(str(self.path), compression="gzip") if self.gzipped else str(self.path)


@dataclass(frozen=True)
class Columns:
    """The names in a file of the columns that hold each field; ``time`` None when absent."""

    user: str
    item: str
    rating: str | None
    """None for an implicit log (plays, clicks): every row a positive."""
    time: str | None = None

    def fields(self) -> dict[str, str]:
        pairs = {"user": self.user, "item": self.item, "rating": self.rating, "time": self.time}
        return {k: v for k, v in pairs.items() if v is not None}


# --- delimited text ------------------------------------------------------------------


def read_delimited(
    source: Source,
    *,
    delimiter: str,
    header: bool,
    names: Sequence[str],
    columns: Columns,
    scale: RatingScale,
    name: str,
    hint: str,
) -> Ratings:
    """Read a delimited text file whose column ``names`` are known (from its header or given).

    ``delimiter`` may be ``"::"`` (MovieLens .dat): pyarrow splits on ":" and the empty
    fields between the two colons are ignored.
    """
    if delimiter == "::":
        # "a::b" splits on ":" into a, "", b: name the empty gaps so they can be left out.
        arrow_names = [names[k // 2] if k % 2 == 0 else f"\0gap{k}" for k in range(2 * len(names) - 1)]
        delim = ":"
    else:
        arrow_names, delim = list(names), delimiter
    wanted = columns.fields()
    rename = {col: field for field, col in wanted.items()}

    # No Python callback goes to pyarrow (no invalid_row_handler): its CSV reader runs on a
    # pool of C++ threads, and a Python object they hold can be released on one of them
    # while the interpreter exits, which aborts the process ("terminate called without an
    # active exception"). A row with the wrong number of fields is found from the error.
    def read(types: dict[str, pa.DataType]) -> pa.Table:
        return pv.read_csv(
            source.arrow_input(),
            read_options=pv.ReadOptions(column_names=arrow_names, skip_rows=1 if header else 0),
            parse_options=pv.ParseOptions(delimiter=delim),
            convert_options=pv.ConvertOptions(
                include_columns=list(wanted.values()),
                column_types={col: types[field] for field, col in wanted.items()},
                null_values=[""],
                strings_can_be_null=True,
            ),
        )

    where = diagnose.Where(source, 1 if header else 0)
    fast = {"user": pa.int64(), "item": pa.int64(), "rating": pa.float64(), "time": pa.int64()}
    try:
        table = read(fast)
    except pa.ArrowInvalid as first:
        diagnose.raise_if_bad_row(source, str(first), delimiter)
        try:  # a value did not convert: read text, and let to_ratings find and name it
            table = read(dict.fromkeys(fast, pa.string()))
        except pa.ArrowInvalid as e:
            diagnose.raise_if_bad_row(source, str(e), delimiter)
            if "UTF8" in str(e):
                raise diagnose.undecodable_line(source) from None
            if "straddl" in str(e):  # a line longer than pyarrow's block
                raise diagnose.long_line(source) from None
            raise DataError(f"cannot parse the file: {e}", path=source.label) from None
    table = table.rename_columns([rename[c] for c in table.column_names])
    return to_ratings(table, where, scale, name, hint)


def first_line(source: Source) -> str:
    """The first line, decoded (a UTF-8 byte-order mark dropped); the header when there is one."""
    with source.open() as f:
        raw = f.readline()
    if not raw.strip():
        raise DataError("the file is empty (or its first line is blank): no ratings to read", path=source.label)
    try:
        return raw.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise diagnose.undecodable_line(source) from None


def split_fields(line: str, delimiter: str) -> list[str]:
    if delimiter == "::" or len(delimiter) != 1:
        return line.split(delimiter)
    return next(csv.reader(io.StringIO(line), delimiter=delimiter))


# --- any ratings file ----------------------------------------------------------------


def _pick(field: str, found: Sequence[str], asked: str | None, label: str, required: bool) -> str | None:
    if asked is not None:
        if asked in found:
            return asked
        raise DataError(f"no column {asked!r} (named by {FLAGS[field]}); the columns are {list(found)}", path=label)
    lower = {c.lower(): c for c in found}
    for alias in ALIASES[field]:
        if alias.lower() in lower:
            return lower[alias.lower()]
    if not required:
        return None
    raise DataError(
        f"no {field} column among {list(found)}; name it with {FLAGS[field]} NAME "
        f"(recognised without a flag: {', '.join(ALIASES[field][:4])})",
        path=label,
    )


def resolve_columns(found: Sequence[str], label: str, **asked: str | None) -> Columns:
    """Which of the ``found`` header names hold each field: asked-for names, else known aliases.

    No rating column (none named, none recognised) makes the file an implicit log.
    """
    picked = {
        "user": _pick("user", found, asked.get("user"), label, True),
        "item": _pick("item", found, asked.get("item"), label, True),
        "rating": _pick("rating", found, asked.get("rating"), label, False),
        "time": _pick("time", found, asked.get("time"), label, asked.get("time") is not None),
    }
    holder: dict[str, str] = {}  # column -> the field that took it first
    for field, column in picked.items():
        if column is None:
            continue
        if column in holder:
            first = holder[column]
            raise DataError(
                f"column {column!r} would hold both the {first} and the {field}; "
                f"name a different column for one of them with {FLAGS[first]} or {FLAGS[field]}",
                path=label,
            )
        holder[column] = field
    return Columns(**picked)  # type: ignore[arg-type]


def sniff_delimiter(path: Path, line: str) -> str:
    """By extension (.csv, .tsv), else the separator the first line uses most."""
    suffix = path.suffix.lower() if path.suffix.lower() != ".gz" else Path(path.stem).suffix.lower()
    ext = {".csv": ",", ".tsv": "\t", ".tab": "\t"}.get(suffix)
    if ext and ext in line:
        return ext  # a ".csv" separated by ";" (as spreadsheets write them in many locales) is sniffed below
    if "::" in line:
        return "::"
    counts = {d: line.count(d) for d in ("\t", ",", ";", "|")}
    best = max(counts, key=counts.__getitem__)
    if counts[best] == 0:
        raise DataError(
            f"cannot tell how fields are separated in the first line {line[:80]!r}; "
            "use a .csv or .tsv file with one rating per line",
            path=str(path),
        )
    return best


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in (".parquet", ".pq"):
        return True
    with open(path, "rb") as f:
        return f.read(4) == b"PAR1"


def _looks_numeric(fields: Sequence[str]) -> bool:
    try:
        [float(f) for f in fields]
    except ValueError:
        return False
    return True


def read_ratings_file(
    path: str | Path,
    *,
    user_col: str | None = None,
    item_col: str | None = None,
    rating_col: str | None = None,
    time_col: str | None = None,
    rating_range: tuple[float, float] | None = None,
    name: str | None = None,
) -> Ratings:
    """Read any ratings file: CSV, TSV (or another single-character separator) or Parquet.

        Columns are found by header name: the ``*_col`` arguments, else common names
        (``userId,movieId,rating,timestamp`` as MovieLens writes them, ``user_id``, ``item``...).
        A text file whose first line is all numbers has no header and is read as
        user, item, rating[, timestamp] (user, item alone: an implicit log). Ratings outside
        ``rating_range`` (0.5..5 unless given) are an error rather than being dropped; a range
    given is kept as the log's scale (``Ratings.scale``). A file
        with no rating column is an implicit log (plays, clicks, purchases): each (user, item)
        pair is one positive, held as a rating of 1.0, and ``Ratings.implicit`` is True.
    """
    path = Path(path)
    source = Source(path)
    scale = DEFAULT_SCALE if rating_range is None else RatingScale(*rating_range)
    hint = "pass --rating-range LO,HI if your scale is different"
    asked = {"user": user_col, "item": item_col, "rating": rating_col, "time": time_col}
    name = name or path.name
    if _is_parquet(path):
        try:
            found = pq.read_schema(path).names
            columns = resolve_columns(found, str(path), **asked)
            table = pq.read_table(path, columns=list(columns.fields().values()))
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"cannot read Parquet file: {e}", path=str(path)) from None
        table = table.rename_columns(list(columns.fields()))
        ratings = to_ratings(table, diagnose.Where(source, None), scale, name, hint)
        return ratings if rating_range is None else declare(ratings, scale)
    line = first_line(source)
    delimiter = sniff_delimiter(path, line)
    fields = split_fields(line, delimiter)
    header = not _looks_numeric(fields)
    if header:
        names, columns = fields, resolve_columns(fields, str(path), **asked)
    else:
        if any(asked.values()):
            raise DataError(
                "the file has no header row, so columns cannot be chosen by name; "
                "it is read as user, item, rating[, timestamp] in that order",
                path=str(path),
            )
        if len(fields) < 2:
            message = f"need user and item columns (and a rating); the first line has {len(fields)} field"
            raise DataError(message, path=str(path), line=1)
        names = [f"column{k + 1}" for k in range(len(fields))]
        rating = names[2] if len(names) > 2 else None  # two columns: user, item, an implicit log
        columns = Columns(names[0], names[1], rating, names[3] if len(names) > 3 else None)
    ratings = read_delimited(
        source, delimiter=delimiter, header=header, names=names, columns=columns, scale=scale, name=name, hint=hint
    )
    # A scale given is the model's scale, whatever ratings the log happens to hold (a 1-10
    # log with no 10 is still rated out of 10); without one, the ratings present stand for it.
    return ratings if rating_range is None else declare(ratings, scale)
