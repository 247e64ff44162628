"""The few exception types users can catch.

Every error a user can cause (bad data, a bad flag, a missing model) is a
``MovierecError``; the CLI prints its message and exits with code 2, no traceback.
"""

from __future__ import annotations

import errno


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


_REASONS = {
    errno.EROFS: "the filesystem is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "the operation is not permitted there",
    errno.ELOOP: "a loop of symbolic links",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENAMETOOLONG: "a name in the path is too long",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is used up",
    errno.EEXIST: "something else is already there",
    errno.EXDEV: "it is on another filesystem",
    errno.EIO: "an input/output error of the device",
}


def os_reason(exc: OSError) -> str:
    """What an OS error means, in words a user can act on (the errno's own text when unknown)."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    return (exc.strerror or str(exc)).lower()
