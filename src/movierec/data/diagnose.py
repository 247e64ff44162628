"""Working out where a read went wrong, only ever after it has: line numbers, the bad line, why.

A clean file never comes here; these passes re-read the source to name the line an
editor shows, and what to change in it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from movierec.errors import DataError

if TYPE_CHECKING:
    from movierec.data.readers import Source


class Where:
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


def first_line_with(source: Source, text: str) -> int | None:
    want = text.encode("utf-8", "surrogateescape").rstrip(b"\r\n")
    with source.open() as f:
        for number, raw in enumerate(f, 1):
            if raw.rstrip(b"\r\n") == want:
                return number
    return None


def undecodable_line(source: Source) -> DataError:
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


LONGEST_LINE = 1 << 20
"""pyarrow's CSV block size (1 MiB): no line may be longer."""


def long_line(source: Source) -> DataError:
    with source.open() as f:
        for number, raw in enumerate(f, 1):
            if len(raw) > LONGEST_LINE:
                return DataError(
                    f"the line is {len(raw):,} bytes long (it begins {raw[:40]!r}); a line may have at most "
                    f"{LONGEST_LINE:,} and a ratings line has a few dozen: is this a ratings file, with line breaks?",
                    path=source.label,
                    line=number,
                )
    return DataError(
        f"a line is longer than {LONGEST_LINE:,} bytes; split it into one rating a line", path=source.label
    )


_BAD_ROW = re.compile(r"Expected (\d+) columns, got (\d+): (.*)", re.S)


def raise_if_bad_row(source: Source, message: str, delimiter: str) -> None:
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
        line=first_line_with(source, text),
    ) from None
