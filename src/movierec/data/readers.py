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
import re
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from movierec.data.ids import IdIndex
from movierec.data.ratings import Ratings
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

_NOUN = {"user": "user id", "item": "item id", "rating": "rating", "time": "timestamp"}
_NUMBER = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
_INTEGER = r"^[-+]?\d+$"


@dataclass(frozen=True)
class RatingScale:
    """The ratings a source may hold: ``lo..hi``, on a grid of ``step`` when it has one."""

    lo: float
    hi: float
    step: float | None = None
    """0.5 for half stars, 1 for whole stars, None when any value in range is allowed."""

    def describe(self) -> str:
        grid = {0.5: " in half stars", 1.0: " in whole stars"}.get(self.step or 0.0, "")
        return f"{self.lo:g}..{self.hi:g}{grid}"


GZIP_MAGIC = b"\x1f\x8b"

DEFAULT_SCALE = RatingScale(0.5, 5.0)
"""What a plain file is checked against unless ``rating_range`` says otherwise."""


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


# --- locating rows -------------------------------------------------------------------


class _Where:
    """Turns row numbers into the lines an editor shows; only ever run to report an error."""

    def __init__(self, source: Source, skip_lines: int | None) -> None:
        self.source = source
        self.skip_lines = skip_lines  # None for Parquet, which has rows but no lines
        self._lines: np.ndarray | None = None

    def line(self, row: int) -> int | None:
        if self.skip_lines is None:
            return None
        if self._lines is None:
            # pyarrow skips blank lines, so data row r is the r-th non-blank line after the header.
            buf = np.frombuffer(self.source.read_bytes(), dtype=np.uint8)
            ends = np.flatnonzero(buf == ord("\n"))
            starts = np.r_[0, ends + 1]
            ends = np.r_[ends, len(buf)]
            length = ends - starts
            last = buf[np.maximum(ends - 1, 0)] if len(buf) else np.zeros(0, np.uint8)
            blank = (length == 0) | ((length == 1) & (last == ord("\r")))
            self._lines = np.flatnonzero(~blank[self.skip_lines :]) + self.skip_lines + 1
        return int(self._lines[row]) if row < len(self._lines) else None

    def fail(self, row: int, message: str) -> DataError:
        line = self.line(row)
        if line is None:
            message = f"row {row + 1}: {message}"
        return DataError(message, path=self.source.label, line=line)


def _first_line_with(source: Source, text: str) -> int | None:
    want = text.encode("utf-8", "surrogateescape").rstrip(b"\r\n")
    with source.open() as f:
        for number, raw in enumerate(f, 1):
            if raw.rstrip(b"\r\n") == want:
                return number
    return None


def _undecodable_line(source: Source) -> DataError:
    with source.open() as f:
        for number, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                bad = raw[e.start : e.start + 1]
                return DataError(
                    f"byte {bad!r} at column {e.start + 1} is not UTF-8 ({raw[:80]!r}); "
                    "save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
                    path=source.label,
                    line=number,
                )
    return DataError("the file is not valid UTF-8; save it as UTF-8", path=source.label)


# --- columns to a Ratings table ------------------------------------------------------


def index_ids(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique ids and each row's position among them.

    The same result as ``np.unique(ids, return_inverse=True)`` (what ``IdIndex.build``
    does), but by hashing instead of sorting every row: 0.1 s instead of 2 s for 20M ids.
    """
    uniq = pc.unique(col)
    uniq = uniq.take(pc.array_sort_indices(uniq))
    inverse = pc.index_in(col, value_set=uniq)
    if isinstance(inverse, pa.ChunkedArray):
        inverse = inverse.combine_chunks()
    ids = uniq.to_numpy() if pa.types.is_integer(uniq.type) else np.array(uniq.to_pylist(), dtype=str)
    return ids, inverse.to_numpy().astype(np.int32, copy=False)


def _first_true(mask: pa.Array | np.ndarray) -> int | None:
    arr = mask if isinstance(mask, np.ndarray) else mask.to_numpy(zero_copy_only=False)
    hits = np.flatnonzero(arr)
    return int(hits[0]) if len(hits) else None


def _strings(col: pa.Array) -> bool:
    return pa.types.is_string(col.type) or pa.types.is_large_string(col.type)


def _numeric(col: pa.Array) -> bool:
    return pa.types.is_integer(col.type) or pa.types.is_floating(col.type)


def _whole(field: str, col: pa.Array) -> tuple[pa.Array, tuple[int, str] | None]:
    """Numbers as int64, or the first that has a fraction (a safe cast refuses to truncate)."""
    try:
        return col.cast(pa.int64()), None
    except pa.ArrowInvalid:
        bad = _first_true(pc.not_equal(col, pc.floor(col))) or 0
        return col, (bad, f"{_NOUN[field]} {col[bad].as_py()} is not a whole number; fix or delete the line")


def _string_ids(field: str, col: pa.Array) -> tuple[pa.Array, tuple[int, str] | None]:
    """Ids read as text: integers when every one is a whole number ("12", "12.0"), else names.

    "1" and "1.0" are one id, not two; a number too large for 64 bits is an error rather
    than a reason to turn every id into a string.
    """
    integral = pc.match_substring_regex(col, r"^[+-]?\d+(\.0*)?$")
    if not pc.all(integral).as_py():
        return col, None  # names (or a mix): the ids stay strings
    digits = pc.replace_substring_regex(col, r"\.0*$", "")
    try:
        return digits.cast(pa.int64()), None
    except pa.ArrowInvalid:
        big = _first_true(pc.greater(pc.utf8_length(pc.utf8_ltrim(digits, "+-0")), 18)) or 0
        return col, (big, f"{_NOUN[field]} {col[big].as_py()} does not fit in 64 bits; use smaller ids or names")


def _convert(field: str, col: pa.Array, where: _Where) -> tuple[pa.Array, tuple[int, str] | None]:
    """A column in the type it must have, or the first row that cannot be and why."""
    if field in ("user", "item"):
        if _strings(col):
            return _string_ids(field, col)
        if pa.types.is_unsigned_integer(col.type):
            too_big = _first_true(pc.greater(col, np.iinfo(np.int64).max))
            if too_big is not None:
                return col, (too_big, f"{_NOUN[field]} {col[too_big].as_py()} does not fit in 64 bits; use smaller ids")
        if _numeric(col):
            return _whole(field, col)
        raise DataError(f"{_NOUN[field]}s must be integers or strings, found {col.type}", path=where.source.label)
    if field == "time" and pa.types.is_timestamp(col.type):
        return col.cast(pa.timestamp("s")).cast(pa.int64()), None
    if _strings(col):
        pattern, kind = (_NUMBER, "a number") if field == "rating" else (_INTEGER, "whole seconds since 1970")
        bad = _first_true(pc.invert(pc.match_substring_regex(col, pattern)))
        if bad is not None:
            return col, (bad, f"{_NOUN[field]} {col[bad].as_py()!r} is not {kind}; fix or delete the line")
        return col.cast(pa.float64() if field == "rating" else pa.int64()), None
    if not _numeric(col):
        raise DataError(f"the {_NOUN[field]} column holds {col.type}, not numbers", path=where.source.label)
    return (col.cast(pa.float64()), None) if field == "rating" else _whole(field, col)


def _check_scale(rating: np.ndarray, scale: RatingScale, where: _Where, hint: str) -> None:
    bad = ~((rating >= scale.lo) & (rating <= scale.hi))
    if scale.step is not None:
        steps = rating / scale.step
        bad |= steps != np.round(steps)
    row = _first_true(bad)
    if row is not None:
        raise where.fail(row, f"rating {rating[row]:g} is not on the scale {scale.describe()}; {hint}")


def _check_duplicates(index: IdIndex, user_idx: np.ndarray, item_idx: np.ndarray, where: _Where) -> None:
    key = user_idx.astype(np.int64) * max(index.n_items, 1) + item_idx
    if np.all(key[1:] > key[:-1]):
        return  # MovieLens files are sorted by user then item: one pass answers
    if np.all(np.diff(np.sort(key)) != 0):
        return
    order = np.argsort(key, kind="stable")
    sk = key[order]
    second = np.flatnonzero(sk[1:] == sk[:-1]) + 1
    pos = second[np.argmin(order[second])]  # the repeat that comes first in the file
    first = order[np.searchsorted(sk, sk[pos])]
    u, i = index.user_ids[user_idx[first]], index.item_ids[item_idx[first]]
    lines = [where.line(int(first)), where.line(int(order[pos]))]
    at = f"lines {lines[0]} and {lines[1]}" if lines[0] else f"rows {first + 1} and {order[pos] + 1}"
    raise DataError(
        f"user {u} rated item {i} twice, on {at}; keep one rating per (user, item) pair",
        path=where.source.label,
        line=lines[1],
    )


def to_ratings(table: pa.Table, where: _Where, scale: RatingScale, name: str, hint: str) -> Ratings:
    """Check and index a table with columns user, item, rating[, time] into ``Ratings``.

    ``hint`` ends an out-of-scale message with how to fix it (which flag widens the scale).
    """
    if table.num_rows == 0:
        raise DataError("no ratings: the file has no rating rows", path=where.source.label)
    problems: list[tuple[int, str]] = []
    cols = {}
    for field in table.column_names:
        col = table[field].combine_chunks()
        missing = pc.is_null(col) if col.null_count else None
        if _strings(col):  # a blank cell is as missing as an empty one
            col = pc.utf8_trim_whitespace(col)
            blank = pc.equal(col, "")
            missing = blank if missing is None else pc.or_(missing, blank)
            missing = missing if pc.any(missing).as_py() else None
        if missing is not None:
            row = _first_true(missing) or 0
            problems.append((row, f"missing {_NOUN[field]} (empty cell); fill it in or delete the line"))
            continue
        cols[field], problem = _convert(field, col, where)
        if problem:
            problems.append(problem)
    if problems:
        raise where.fail(*min(problems))
    users, user_idx = index_ids(cols["user"])
    items, item_idx = index_ids(cols["item"])
    index = IdIndex(users, items)
    timestamp = cols["time"].to_numpy() if "time" in cols else None
    if "rating" not in cols:
        return _implicit(index, user_idx, item_idx, timestamp, name)
    rating = cols["rating"].to_numpy()
    _check_scale(rating, scale, where, hint)
    _check_duplicates(index, user_idx, item_idx, where)
    return Ratings(user_idx, item_idx, rating.astype(np.float32), timestamp, index, name=name)


def _implicit(
    index: IdIndex, user_idx: np.ndarray, item_idx: np.ndarray, timestamp: np.ndarray | None, name: str
) -> Ratings:
    """A log without ratings: each (user, item) pair once (repeated plays are one positive), rated 1.0."""
    key = user_idx.astype(np.int64) * max(index.n_items, 1) + item_idx
    _, first = np.unique(key, return_index=True)
    first = np.sort(first)  # the earliest row of each pair, in file order
    ones = np.ones(len(first), dtype=np.float32)
    times = None if timestamp is None else timestamp[first]
    return Ratings(user_idx[first], item_idx[first], ones, times, index, name=name, implicit=True)


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

    where = _Where(source, 1 if header else 0)
    fast = {"user": pa.int64(), "item": pa.int64(), "rating": pa.float64(), "time": pa.int64()}
    try:
        table = read(fast)
    except pa.ArrowInvalid as first:
        _raise_if_bad_row(source, str(first), delimiter)
        try:  # a value did not convert: read text, and let to_ratings find and name it
            table = read(dict.fromkeys(fast, pa.string()))
        except pa.ArrowInvalid as e:
            _raise_if_bad_row(source, str(e), delimiter)
            if "UTF8" in str(e):
                raise _undecodable_line(source) from None
            raise DataError(f"cannot parse the file: {e}", path=source.label) from None
    table = table.rename_columns([rename[c] for c in table.column_names])
    return to_ratings(table, where, scale, name, hint)


_BAD_ROW = re.compile(r"Expected (\d+) columns, got (\d+): (.*)", re.S)


def _raise_if_bad_row(source: Source, message: str, delimiter: str) -> None:
    """A DataError naming the line, when pyarrow's ``message`` is about a row's number of fields."""
    m = _BAD_ROW.search(message)
    if m is None:
        return
    text = m.group(3).rstrip("\r\n")
    expected = (int(m.group(1)) + 1) // 2 if delimiter == "::" else int(m.group(1))
    found = len(text.split(delimiter)) if delimiter == "::" else int(m.group(2))
    raise DataError(
        f"found {found} fields separated by {delimiter!r}, expected {expected}: {text[:80]!r}",
        path=source.label,
        line=_first_line_with(source, text),
    ) from None


def first_line(source: Source) -> str:
    """The first line, decoded (a UTF-8 byte-order mark dropped); the header when there is one."""
    with source.open() as f:
        raw = f.readline()
    if not raw.strip():
        raise DataError("the file is empty (or its first line is blank): no ratings to read", path=source.label)
    try:
        return raw.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise _undecodable_line(source) from None


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
    return Columns(
        user=_pick("user", found, asked.get("user"), label, True),  # type: ignore[arg-type]
        item=_pick("item", found, asked.get("item"), label, True),  # type: ignore[arg-type]
        rating=_pick("rating", found, asked.get("rating"), label, False),
        time=_pick("time", found, asked.get("time"), label, asked.get("time") is not None),
    )


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
    ``rating_range`` (0.5..5 unless given) are an error rather than being dropped. A file
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
        return to_ratings(table, _Where(source, None), scale, name, hint)
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
    return read_delimited(
        source, delimiter=delimiter, header=header, names=names, columns=columns, scale=scale, name=name, hint=hint
    )
