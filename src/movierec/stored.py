"""The one reader of values movierec stored: a model's manifest, a checkpoint, a tuned config.

Such a file may have been edited, damaged or planted, so nothing in it is trusted: each
value is checked for its kind, its range and its size before anything is built from it or
allocated for it. A value that fails is an ``Invalid`` naming the field; the caller adds
the file and how to fix it. The same rules apply to every file, so a value one loader
refuses no other accepts.

Text that will be printed (titles, names) loses its control characters (``printable``): a
data file or a manifest must not be able to move the cursor or retitle a terminal.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

MAX_INT_DIGITS = 20
"""Longest whole number read (a signed 64-bit integer has at most 19 digits)."""
MAX_TEXT = 1000
"""Longest title or name read (ml-latest-small's longest title has 158 characters)."""
MAX_SCALE = 1e6
"""Largest magnitude of either end of a rating scale."""
MAX_DIM = 4096
"""Largest size of a model's factors or hidden layer read from a file (the defaults use 10 to 1024)."""
MAX_COUNT = 1_000_000
"""Largest count (sweeps, epochs, neighbours, batch size) read from a file."""
SIZE_FIELDS = frozenset({"dim", "hidden"})
"""Config fields whose value is the width of a weight matrix: capped at ``MAX_DIM``."""

_ESCAPES = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: ESC ] ... BEL or ESC \ (retitles a terminal)
    r"|\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI: ESC [ ... final byte (moves the cursor, clears the screen)
    r"|\x9b[0-?]*[ -/]*[@-~]?"  # CSI as its one-byte C1 form
    r"|[\x00-\x08\x0a-\x1f\x7f-\x9f]"  # every other C0 and C1 control but the tab
)
_TAB = re.compile(r"\t")


class Invalid(ValueError):
    """A stored value that is not what movierec writes; the message names the field."""


def printable(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (a tab becomes a space)."""
    return _TAB.sub(" ", _ESCAPES.sub("", text))


def has_controls(text: str) -> bool:
    """True when ``text`` holds a control character (C0 but the tab, DEL, or C1)."""
    return any(ord(c) < 32 and c != "\t" or 127 <= ord(c) < 160 for c in text)


def read_json(path: Path, max_bytes: int) -> Any:
    """The JSON in ``path``: ``Invalid`` when too large, not UTF-8, not JSON, nested too deeply,
    or holding a number JSON should not (NaN, Infinity, one that overflows, a 5,000-digit integer).

    ``OSError`` passes through for the caller to name.
    """
    if path.stat().st_size > max_bytes:
        raise Invalid(f"over {max_bytes >> 20} MiB, larger than any file movierec writes")
    raw = path.read_bytes()
    try:
        return json.loads(raw.decode("utf-8"), parse_int=_int, parse_float=_float, parse_constant=_constant)
    except UnicodeDecodeError as exc:
        raise Invalid(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise Invalid("not valid JSON (nested too deeply)") from None
    except Invalid:
        raise
    except ValueError as exc:  # JSONDecodeError is one
        raise Invalid(f"not valid JSON ({exc})") from None


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise Invalid(f"a number of {len(text):,} digits, beyond any value movierec writes")
    return int(text)


def _float(text: str) -> float:
    if len(text) > 400:
        raise Invalid(f"a number written with {len(text):,} characters")
    value = float(text)
    if not math.isfinite(value):
        raise Invalid(f"the number {text[:40]} overflows")
    return value


def _constant(name: str) -> float:
    raise Invalid(f"{name} is not a number movierec writes")


def utf8(value: object, field: str) -> None:
    """Refuse a string anywhere in ``value`` that cannot be written out (a lone surrogate, ``"\\ud800"``)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise Invalid(f"{field} holds text that is not Unicode (a lone surrogate)") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def text(value: object, field: str, max_len: int = MAX_TEXT) -> str:
    """A string of at most ``max_len`` characters, made printable."""
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string, got {kind(value)}")
    if len(value) > max_len:
        raise Invalid(f"{field} is {len(value):,} characters long (at most {max_len:,})")
    utf8(value, field)
    return printable(value)


def number(value: object, field: str, lo: float = -math.inf, hi: float = math.inf, *, whole: bool = False) -> Any:
    """A finite number (an int when ``whole``) within ``lo..hi``; a boolean is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or (whole and not isinstance(value, int)):
        raise Invalid(f"{field} must be {'a whole number' if whole else 'a number'}, got {kind(value)}")
    if not (math.isfinite(value) and lo <= value <= hi):
        raise Invalid(f"{field} must be from {lo:g} to {hi:g}, got {kind(value)}")
    return value


def scale(value: object, field: str = "rating_scale") -> tuple[float, float]:
    """A rating scale ``[lo, hi]``: two finite numbers within +-``MAX_SCALE``, lo <= hi."""
    if not (isinstance(value, list) and len(value) == 2):
        raise Invalid(f"{field} must be [lo, hi], got {kind(value)}")
    lo, hi = (float(number(v, field, -MAX_SCALE, MAX_SCALE)) for v in value)
    if lo > hi:
        raise Invalid(f"{field} must have lo <= hi, got [{lo:g}, {hi:g}]")
    return lo, hi


def config(cls: type, fields: object, field: str) -> Any:
    """``cls(**fields)`` for a frozen config dataclass, each field's value checked against the kind
    of its default: a whole number for an int (within 0..``MAX_COUNT``, ``MAX_DIM`` for sizes), a
    finite number for a float, true or false for a bool, a short string for a str. Unknown
    fields are refused; missing ones take their default. Fields whose default is of another
    kind (a tuple, None) are left to the class to check.
    """
    if not isinstance(fields, dict):
        raise Invalid(f"{field} must be an object, got {kind(fields)}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise Invalid(f"{field} has unknown field(s) {', '.join(map(str, unknown[:5]))}")
    for name, value in fields.items():
        check(value, known[name].default, f"{field}.{name}")
    return cls(**fields)


def check(value: object, default: object, field: str) -> None:
    """Refuse ``value`` where it may not stand for a field whose default is ``default``."""
    name = field.rsplit(".", 1)[-1]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise Invalid(f"{field} must be true or false, got {kind(value)}")
    elif isinstance(default, int):
        number(value, field, 0, MAX_DIM if name in SIZE_FIELDS else MAX_COUNT, whole=True)
    elif isinstance(default, float):
        number(value, field)
    elif isinstance(default, str):
        text(value, field, 100)


def kind(value: object) -> str:
    """How a message shows a JSON value: the value itself when short (``2.5``, ``'no'``), else its kind."""
    if isinstance(value, bool | int | float) or value is None:
        return json.dumps(value)
    if isinstance(value, str) and len(value) <= 40:
        return printable(repr(value))
    names: dict[type, str] = {str: "a long string", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)
