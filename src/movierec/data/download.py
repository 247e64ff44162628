"""Downloading a MovieLens release once, checking it, and keeping it unpacked in the cache.

The zip is streamed to a temporary file while its SHA-256 is computed, compared with the
pinned value, unpacked into a temporary folder and only then renamed into place: a
damaged or interrupted download leaves nothing behind, and a folder in the cache is
always complete. Offline, ``fetch`` fails at once and says how to use local files.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from movierec.data.cache import cache_root
from movierec.data.releases import BASE_URL, Release, get_release
from movierec.errors import DataError

_CHUNK = 1 << 20


def mirror_url(mirror: str | None = None) -> str:
    """The base URL to download from: the argument, else ``$MOVIEREC_MIRROR``, else GroupLens."""
    return mirror or os.environ.get("MOVIEREC_MIRROR") or BASE_URL


def fetch(
    release: str | Release,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    *,
    mirror: str | None = None,
    timeout: float = 30.0,
) -> Path:
    """The unpacked folder of a release, downloading and checking it on first use.

    ``release`` is a name (``"ml-20m"``) or a ``Release``, which lets a caller (a test, a
    private mirror) give its own checksum and size. A zip already placed in the cache
    folder as ``NAME.zip`` is checked and unpacked instead of downloading.
    """
    rel = release if isinstance(release, Release) else get_release(release)
    root = cache_root(cache_dir)
    target = root / rel.name
    if (target / rel.folder).is_dir():
        return target / rel.folder
    root.mkdir(parents=True, exist_ok=True)
    placed = root / rel.filename
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{rel.name}-") as tmp:
        if placed.is_file():
            zip_path = placed
            _verify(rel, zip_path, _digests(zip_path), origin=str(zip_path), mirror=mirror, timeout=timeout)
        else:
            zip_path = Path(tmp) / rel.filename
            url = rel.url(mirror_url(mirror))
            digests = _download(url, zip_path, rel, root, progress, timeout)
            _verify(rel, zip_path, digests, origin=url, mirror=mirror, timeout=timeout)
        _unpack(zip_path, Path(tmp) / "unpacked", rel)
        try:
            os.rename(Path(tmp) / "unpacked", target)
        except OSError:
            if not (target / rel.folder).is_dir():  # not another process finishing first
                message = f"{target} is in the way and does not hold {rel.folder}/; delete it and try again"
                raise DataError(message) from None
    return target / rel.folder


def _offline(rel: Release, url: str, reason: object, root: Path) -> DataError:
    return DataError(
        f"cannot download {rel.name} from {url} ({reason}). If you are offline, use local files: "
        f"--data PATH (the GroupLens zip or its unpacked folder), or put {rel.filename} in {root}"
    )


def _download(url: str, dest: Path, rel: Release, root: Path, progress: bool, timeout: float) -> dict[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as out:
            length = int(resp.headers.get("Content-Length") or 0) or None
            if rel.size is not None and length is not None and length != rel.size:
                raise DataError(
                    f"{url} is {length} bytes, but {rel.filename} should be {rel.size}; "
                    "the mirror serves a different file. Download it yourself and pass --data PATH"
                )
            with _progress_bar(progress, rel.filename, length or rel.size) as advance:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    sha.update(chunk)
                    md5.update(chunk)
                    advance(len(chunk))
    except urllib.error.HTTPError as e:
        raise DataError(f"cannot download {rel.name}: {url} answered {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise _offline(rel, url, e.reason, root) from None
    except (TimeoutError, ConnectionError) as e:
        raise _offline(rel, url, e or "timed out", root) from None
    except http.client.HTTPException as e:
        raise DataError(f"the download of {rel.name} from {url} was cut off ({e!r}); try again") from None
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


@contextmanager
def _progress_bar(show: bool, label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr (so piped output stays clean), or nothing."""
    if not show:
        yield lambda n: None
        return
    columns = (TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _digests(path: Path) -> dict[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def _published_md5(rel: Release, mirror: str | None, timeout: float) -> str:
    url = rel.url(mirror_url(mirror)) + ".md5"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            text = resp.read(4096).decode("ascii", "replace")
    except (urllib.error.URLError, OSError) as e:
        raise DataError(f"cannot fetch {url} to check {rel.filename}: {e}") from None
    found = re.search(r"\b[0-9a-fA-F]{32}\b", text)
    if not found:
        raise DataError(f"{url} holds no MD5 checksum")
    return found.group().lower()


def _verify(
    rel: Release, path: Path, digests: dict[str, str], *, origin: str, mirror: str | None, timeout: float
) -> None:
    """Compare with the pinned size and SHA-256 (or the published MD5); say plainly when neither exists."""
    size = path.stat().st_size
    fix = "Delete it and try again, or download it yourself and pass --data PATH"
    if rel.size is not None and size != rel.size:
        raise DataError(f"{rel.filename} from {origin} is {size} bytes, expected {rel.size}: it is incomplete. {fix}")
    if rel.sha256 is not None:
        if digests["sha256"] != rel.sha256:
            raise DataError(
                f"{rel.filename} from {origin} has SHA-256 {digests['sha256']}, expected {rel.sha256}: "
                f"the file is damaged or not the release. Nothing was kept. {fix}"
            )
        return
    if rel.md5_published:
        expected = _published_md5(rel, mirror, timeout)
        if digests["md5"] != expected:
            raise DataError(f"{rel.filename} from {origin} has MD5 {digests['md5']}, expected {expected}. {fix}")
    if rel.note:
        warnings.warn(rel.note, stacklevel=3)


def _unpack(zip_path: Path, dest: Path, rel: Release) -> None:
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for name in zf.namelist():
                p = PurePosixPath(name)
                if p.is_absolute() or ".." in p.parts:
                    raise DataError(f"{zip_path.name} holds an unsafe path {name!r}; not unpacking it")
            zf.extractall(dest)  # reads every member, so a bad CRC fails here
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
        shutil.rmtree(dest, ignore_errors=True)
        raise DataError(f"{zip_path.name} is not a readable zip ({e}); delete it and try again") from None
    if not (dest / rel.folder).is_dir():
        raise DataError(f"{zip_path.name} does not unpack to {rel.folder}/ as {rel.name} should")
