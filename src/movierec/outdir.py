"""What a command writes (``--out``): where it may write, and what it may replace.

Every file movierec writes goes through here, by one rule: it is written inside a
private temporary folder (``mkdtemp``: mode 0700, a fresh name) beside its target,
flushed to disk, and renamed onto the target only when complete. Nothing is opened
through a name someone else could have planted, so no symbolic link is followed and
no file of anyone else's is truncated. What a rename may replace is checked first:

- a model folder only when movierec wrote it: its manifest records the SHA-256 of every
  other file in it, and the folder holds those files, unchanged, and nothing else;
- an output file only when it reads as movierec's own output of that kind.

One run at a time per target: ``locks``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from movierec.errors import ConfigError, os_reason

MANIFEST = "manifest.json"
"""The file that makes a folder a movierec model (``persist`` writes it)."""
WEIGHTS = "model.safetensors"
MODEL_FILES = frozenset({MANIFEST, WEIGHTS, "metrics.json", "loss.png"})
"""Every file ``persist.save`` may write into a model directory."""
NAME_SLACK = len(".") + len(".XXXXXXXX.tmp")
"""The most bytes movierec adds to an --out name for the files it keeps beside it (temporary folders)."""
MAX_MANIFEST_READ = 1 << 30
"""A manifest is read to check a folder's files; a larger one is no manifest movierec wrote (as ``persist``)."""


def check_writable(path: Path, flag: str = "--out") -> None:
    """Refuse a target that cannot be written (under a file, read-only, virtual, a name too long) before any work."""
    name = path.name
    if name in ("", ".", ".."):
        raise ConfigError(f"{flag} {path} names a folder by . or ..; give the output its own name")
    ancestor = _nearest_folder(path, flag)
    limit = _name_max(ancestor) - NAME_SLACK
    if len(os.fsencode(name)) > limit:
        raise ConfigError(
            f"{flag} {path}: the name is {len(os.fsencode(name))} bytes long; movierec keeps files named after it "
            f"beside it, so it may be at most {limit} bytes. Choose a shorter name"
        )
    try:
        probe = tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=ancestor)
    except OSError as exc:
        why = os_reason(exc)
        if exc.errno == errno.ENOENT:  # an existing folder that refuses new entries: /proc, /sys
            why = "the filesystem there takes no new files"
        raise ConfigError(f"{flag} {path}: cannot write in {ancestor} ({why}); choose another {flag}") from None
    os.rmdir(probe)


def _nearest_folder(path: Path, flag: str) -> Path:
    """The deepest existing folder on the way to ``path`` (where its missing parents will be made)."""
    for ancestor in path.absolute().parents:
        try:
            st = os.stat(ancestor)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise ConfigError(
                f"{flag} {path}: cannot reach {ancestor} ({os_reason(exc)}); choose another {flag}"
            ) from None
        if not stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"{flag} {path}: {ancestor} is a file, not a folder; choose another {flag}")
        return ancestor
    return Path("/")


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


# --- what may be replaced -------------------------------------------------------------------


def is_model_dir(path: Path) -> bool:
    """True when ``path`` is a folder holding a movierec model's manifest."""
    try:
        head = (path / MANIFEST).read_bytes()[:4096]
    except OSError:
        return False
    return b'"format": "movierec-model"' in head or b'"format":"movierec-model"' in head


def check_replaceable(path: Path) -> None:
    """Refuse a target that is neither missing, an empty folder, nor a model folder movierec wrote.

    A model directory is replaced as a whole, so anything else at that path (a plain file,
    a folder of the user's files, the data itself) would be destroyed.
    """
    if not os.path.lexists(path):
        return
    if path.is_symlink():
        raise ConfigError(f"--out {path} is a symbolic link; movierec does not write through links. Name a new folder")
    if not path.is_dir():
        raise ConfigError(f"--out {path} exists and is not a folder; name a new folder for the model")
    try:
        names = {entry.name for entry in path.iterdir()}
    except OSError as exc:
        raise ConfigError(f"--out {path}: cannot read it ({os_reason(exc)}); name a folder you can write") from None
    if not names:
        return
    if not is_model_dir(path):
        raise ConfigError(
            f"--out {path} is a folder that holds files but no movierec model; movierec replaces the whole folder, "
            "so it will not write there. Name a new or empty folder"
        )
    foreign = sorted(names - MODEL_FILES)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ConfigError(
            f"--out {path} holds a movierec model and files movierec did not write there ({shown}); "
            "replacing the model would delete them. Move them out, or name another folder"
        )
    unrecorded = _unrecorded(path, sorted(names - {MANIFEST}))
    if unrecorded:
        raise ConfigError(
            f"--out {path} looks like a movierec model, but {unrecorded} is not the file its manifest records "
            "movierec writing there (changed since, or the folder was not written by this movierec); it will not "
            "be replaced. Move the folder away, or name another --out"
        )


def _unrecorded(path: Path, names: list[str]) -> str | None:
    """The first of ``names`` whose SHA-256 is not the one the manifest recorded for it (None: all match)."""
    try:
        with open(path / MANIFEST, "rb") as f:
            text = f.read(MAX_MANIFEST_READ + 1)
        if len(text) > MAX_MANIFEST_READ:
            return MANIFEST
        manifest = json.loads(text)
    except (OSError, ValueError, RecursionError):
        return MANIFEST
    if not isinstance(manifest, dict):
        return MANIFEST
    files = manifest.get("files")
    recorded = dict(files) if isinstance(files, dict) else {}
    recorded.setdefault(WEIGHTS, manifest.get("weights_sha256"))
    for name in names:
        file = path / name
        expected = recorded.get(name)
        if not isinstance(expected, str) or file.is_symlink() or not file.is_file():
            return name
        try:
            if sha256(file) != expected:
                return name
        except OSError:
            return name
    return None


def check_file_replaceable(path: Path, ours: Callable[[Path], bool], what: str) -> None:
    """Refuse an output file that exists but is not ``what`` as movierec writes it (``ours`` reads it to tell).

    Rerunning a command may replace its own earlier output; a file of anyone else's
    (the ratings themselves, notes) is never overwritten.
    """
    if not os.path.lexists(path):
        return
    if path.is_symlink():
        raise ConfigError(f"{path} is a symbolic link; movierec does not write through links. Name a new file")
    if not path.is_file():
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


def check_own_folder(path: Path, what: str) -> None:
    """Refuse a folder movierec fills by itself (a checkpoint folder) when it is a symbolic link or a file."""
    if os.path.lexists(path) and (path.is_symlink() or not path.is_dir()):
        raise ConfigError(f"{path} (the {what}) is a symbolic link or a file, not a folder movierec made; move it away")


def sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- writing --------------------------------------------------------------------------------


@contextmanager
def private_folder(target: Path) -> Iterator[Path]:
    """A new folder beside ``target`` that only this user can enter, removed afterwards with what is left in it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def atomic_file(path: Path, before_replace: Callable[[], None] | None = None) -> Iterator[Path]:
    """A path to write, renamed onto ``path`` only if the block completes (else removed).

    The path lies in a private folder beside ``path``, so nobody can plant a link in its
    place. ``before_replace`` runs just before the rename (a check that may refuse it). The
    file is flushed to disk first and gets the permissions the umask gives any new file.
    """
    with private_folder(path) as folder:
        tmp = folder / path.name
        yield tmp
        if before_replace is not None:
            before_replace()
        os.chmod(tmp, 0o666 & ~umask())
        fsync(tmp)
        os.replace(tmp, path)
        fsync(path.parent)


def fsync(path: Path) -> None:
    """Flush a file or folder to disk (a folder: the names in it), so a rename after it never exposes a hole."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EROFS, errno.EBADF):  # filesystems that cannot sync a folder
            raise
    finally:
        os.close(fd)


def umask() -> int:
    """The process's umask (reading it means setting it; it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
