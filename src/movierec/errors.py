"""The few exception types users can catch.

Every error a user can cause (bad data, a bad flag, a missing model) is a
``MovierecError``; the CLI prints its message and exits with code 2, no traceback.
"""

from __future__ import annotations


class MovierecError(Exception):
    """A problem the user can fix; the message says what is wrong and how to fix it."""


class DataError(MovierecError):
    """A ratings file or dataset is missing, malformed or unusable."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line


class ModelError(MovierecError):
    """A saved model directory is missing, corrupt, or was written by an incompatible version."""


class ConfigError(MovierecError):
    """A setting has a value that cannot work (a negative learning rate, an unknown model)."""
