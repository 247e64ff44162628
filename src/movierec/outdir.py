"""What a command writes (``--out``): what may be replaced, whether it can be written, one run at a time.

A model directory is replaced as a whole, so only a missing path, an empty folder or an
earlier movierec model holding nothing else may be the target; an output file replaces
only an earlier file of its own kind. Anything else is refused before any work.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from movierec.errors import ConfigError

MANIFEST = "manifest.json"
"""The file that makes a folder a movierec model (``persist`` writes it)."""
MODEL_FILES = frozenset({MANIFEST, "model.safetensors", "metrics.json", "loss.png"})
"""Every file ``persist.save`` may write into a model directory: replacing one that holds
only these deletes nothing of anyone else's."""


def is_model_dir(path: Path) -> bool:
    """True when ``path`` is a folder holding a movierec model's manifest."""
    try:
        head = (path / MANIFEST).read_bytes()[:4096]
    except OSError:
        return False
    return b'"format": "movierec-model"' in head or b'"format":"movierec-model"' in head


def check_replaceable(path: Path) -> None:
    """Refuse a target that is neither missing, an empty folder, nor a movierec model directory.

    A model directory is replaced as a whole, so anything else at that path (a plain file,
    a folder of the user's files, the data itself) would be destroyed.
    """
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_dir():
        raise ConfigError(f"--out {path} exists and is not a folder; name a new folder for the model")
    try:
        names = {entry.name for entry in path.iterdir()}
    except OSError as exc:
        raise ConfigError(f"--out {path}: cannot read it ({exc.strerror}); name a folder you can write") from None
    if is_model_dir(path):
        foreign = sorted(names - MODEL_FILES)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise ConfigError(
                f"--out {path} holds a movierec model and files movierec did not write there ({shown}); "
                "replacing the model would delete them. Move them out, or name another folder"
            )
        return
    if names:
        raise ConfigError(
            f"--out {path} is a folder that holds files but no movierec model; movierec replaces the whole folder, "
            "so it will not write there. Name a new or empty folder"
        )


def check_writable(path: Path) -> None:
    """Refuse an --out that cannot be written (inside a file, a read-only or virtual folder) before any work."""
    if path.name in ("", ".", ".."):
        raise ConfigError(f"--out {path} names a folder by . or ..; give the model folder its own name")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"--out {path}: {ancestor} is a file, not a folder; choose another --out")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {path}: cannot write in {ancestor} (permission denied); choose another --out")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
    except OSError as exc:
        raise ConfigError(f"--out {path}: cannot write there ({exc.strerror}); choose another --out") from None
    os.close(probe[0])
    os.unlink(probe[1])


@contextmanager
def lock(directory: Path) -> Iterator[None]:
    """Hold ``directory`` for one run: a second run that asks for it is refused, naming the holder.

    An advisory lock (flock) on ``.<name>.lock`` beside the directory, taken without
    waiting, released (and the file removed) when the run ends or its process dies.
    """
    path = directory.with_name(f".{directory.name}.lock")
    directory.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise ConfigError(
                f"another movierec run ({holder}) is writing --out {directory}; wait for it to finish "
                "or choose another --out"
            ) from None
        # The holder before us may have removed the file after we opened it: lock the file on disk.
        if os.path.exists(path) and os.stat(path).st_ino == os.fstat(fd).st_ino:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.unlink(path)
        os.close(fd)


def check_file_replaceable(path: Path, ours: Callable[[Path], bool], what: str) -> None:
    """Refuse an output file that exists but is not ``what`` as movierec writes it (``ours`` reads it to tell).

    Rerunning a command may replace its own earlier output; a file of anyone else's
    (the ratings themselves, notes) is never overwritten.
    """
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_file():
        raise ConfigError(f"{path} exists and is not a plain file; name a new file to write {what} to")
    try:
        mine = ours(path)
    except (OSError, ValueError):
        mine = False
    if not mine:
        raise ConfigError(
            f"{path} exists and is not {what} that movierec wrote; it will not be overwritten. "
            "Name a new file, or move that one away"
        )


@contextmanager
def atomic_file(path: Path, before_replace: Callable[[], None] | None = None) -> Iterator[Path]:
    """A temporary sibling of ``path`` to write; renamed onto ``path`` only if the block completes.

    ``before_replace`` runs just before the rename (a check that may refuse it). The file
    gets the permissions the umask gives any new file (mkstemp makes it 0600).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if before_replace is not None:
            before_replace()
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def umask() -> int:
    """The process's umask (reading it means setting it; it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
