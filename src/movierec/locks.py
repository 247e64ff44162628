"""One run at a time per output: a second run that asks for the same ``--out`` is refused.

A run holds ``.<name>.lock`` beside its target (made with a hard link, so never through
a symbolic link and never over an existing file): a second run is refused, naming the
holder, and so is a lock path that is anything but a lock movierec made.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from movierec.errors import ConfigError, os_reason

_LOCK_TEXT = re.compile(rb"movierec lock: pid (\d+)(?: on [^\s]+)?\n")
"""What a lock file movierec made holds: the holder's pid and host."""


def lock_path(target: Path) -> Path:
    """The lock file of an output: ``.<name>.lock`` beside it."""
    return target.with_name(f".{target.name}.lock")


@contextmanager
def lock(target: Path, flag: str = "--out") -> Iterator[None]:
    """Hold ``target`` for one run: a second run that asks for it is refused, naming the holder.

    An advisory lock (flock) on ``.<name>.lock`` beside the target, taken without waiting,
    released (and the file removed) when the run ends; a lock left by a killed run is taken
    over. The file is made complete in a private folder and hard-linked into place, which
    never follows a symbolic link nor replaces anything; a lock path holding anything else
    is refused and left as it is.
    """
    path = lock_path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):  # each pass either takes the lock or clears a stale one
        fd = _try_lock(path, target, flag)
        if fd is not None:
            break
    else:
        raise ConfigError(f"{path}: could not take the lock for {flag} {target}; try again")
    try:
        yield
    finally:
        try:
            if os.path.samestat(os.lstat(path), os.fstat(fd)):
                os.unlink(path)
        except OSError:
            pass  # already gone, or replaced by someone: not ours to remove
        os.close(fd)


def _try_lock(path: Path, target: Path, flag: str) -> int | None:
    """The locked descriptor of a new lock file at ``path``; None after clearing a stale one (try again)."""
    folder = tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=path.parent)
    fresh = os.path.join(folder, "lock")
    try:
        fd = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        os.write(fd, f"movierec lock: pid {os.getpid()} on {socket.gethostname() or 'localhost'}\n".encode())
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh file: nobody else holds it
        try:
            os.link(fresh, path)
        except FileExistsError:
            os.close(fd)
            _clear_stale(path, target, flag)
            return None
        except OSError as exc:
            os.close(fd)
            raise ConfigError(f"{flag} {target}: cannot make its lock {path} ({os_reason(exc)})") from None
        return fd
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _clear_stale(path: Path, target: Path, flag: str) -> None:
    """Refuse what is at the lock path unless it is a lock movierec made whose run has ended; remove that one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # released meanwhile
    except OSError as exc:
        kind = {errno.ELOOP: "a symbolic link", errno.EISDIR: "a folder"}.get(exc.errno or 0)
        what = kind or f"unreadable ({os_reason(exc)})"
        raise ConfigError(
            f"{path} is {what}, not a lock movierec made; movierec locks {flag} {target} with that name. "
            "Move it away, or choose another --out"
        ) from None
    try:
        st = os.fstat(fd)
        text = os.read(fd, 256) if stat.S_ISREG(st.st_mode) else b""
        found = _LOCK_TEXT.fullmatch(text)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or found is None:
            what = "a folder" if stat.S_ISDIR(st.st_mode) else "a file"
            raise ConfigError(
                f"{path} is {what} that is not a lock movierec made; movierec locks {flag} {target} with that name "
                "and leaves it alone. Move it away, or choose another --out"
            )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"another movierec run (pid {found.group(1).decode()}) is writing {flag} {target}; wait for it to "
                f"finish or choose another {flag}"
            ) from None
        # Its run ended without removing it (killed): remove it, unless it changed since it was read.
        if os.path.samestat(os.lstat(path), st):
            os.unlink(path)
    finally:
        os.close(fd)
