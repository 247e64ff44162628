"""The MovieLens releases GroupLens publishes: where each zip comes from and how to check it.

How a release's files are laid out and read is ``movierec.data.movielens``; downloading and
checking a zip is ``movierec.data.download``.
"""

from __future__ import annotations

from dataclasses import dataclass

from movierec.data.tables import RatingScale
from movierec.errors import ConfigError

BASE_URL = "https://files.grouplens.org/datasets/movielens/"
"""Where GroupLens publishes the zips; ``MOVIEREC_MIRROR`` or ``mirror=`` replaces it."""

HALF_STARS = RatingScale(0.5, 5.0, 0.5)
WHOLE_STARS = RatingScale(1.0, 5.0, 1.0)


@dataclass(frozen=True)
class Release:
    """One GroupLens release: what to download, how to check it, and how it is laid out."""

    name: str
    """The name users type (``ml-20m``) and the zip's stem on the GroupLens site."""
    folder: str
    """The folder the zip unpacks to (``ml-10M100K`` for ml-10m)."""
    layout: str
    """``100k``, ``dat`` or ``csv``: which files hold the ratings and titles."""
    scale: RatingScale
    """The ratings the release can hold; anything else in its files is an error."""
    sha256: str | None = None
    """SHA-256 of the zip, or None when no value can be pinned (see ``note``)."""
    size: int | None = None
    """Size of the zip in bytes, or None when unknown."""
    md5_published: bool = False
    """GroupLens publishes ``NAME.zip.md5`` next to the zip; used when there is no SHA-256."""
    note: str = ""
    """Why the download cannot be fully verified, when it cannot."""

    @property
    def filename(self) -> str:
        return f"{self.name}.zip"

    def url(self, mirror: str | None = None) -> str:
        return (mirror or BASE_URL).rstrip("/") + "/" + self.filename


_BY_SHAPE = {
    ("100k", WHOLE_STARS): ("ml-100k",),
    ("dat", WHOLE_STARS): ("ml-1m",),
    ("dat", HALF_STARS): ("ml-10m",),
    ("csv", HALF_STARS): ("ml-20m", "ml-25m", "ml-32m", "ml-latest", "ml-latest-small"),
}
"""The releases by layout and rating scale, oldest first (the order users are shown them in)."""
_FOLDERS = {"ml-10m": "ml-10M100K"}
"""The zips that unpack to a folder not named after the release."""
_PINNED = {
    "ml-100k": ("50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229", 4924029),
    "ml-1m": ("a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20", 5917549),
    "ml-10m": ("813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862", 65566137),
    "ml-20m": ("96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3", 198702078),
    "ml-25m": ("8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa", 261978986),
    "ml-latest-small": ("696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436", 978202),
}
"""SHA-256 and size in bytes of each zip whose content GroupLens keeps fixed."""
_MD5_PUBLISHED = {"ml-32m"}
"""Releases without a pinned SHA-256 that GroupLens publishes an MD5 beside."""
_UNPINNED = {
    "ml-32m": "no SHA-256 is published for ml-32m; checked against the MD5 GroupLens publishes beside it, "
    "which catches a damaged download but not a substituted one",
    "ml-latest": "ml-latest changes with each GroupLens refresh, so no checksum can be pinned; "
    "the download is checked only for being a readable zip",
}
"""Why a release's download cannot be fully verified, for those without a pinned SHA-256."""


def _release(name: str, layout: str, scale: RatingScale) -> Release:
    sha256, size = _PINNED.get(name, (None, None))
    folder = _FOLDERS.get(name, name)
    return Release(name, folder, layout, scale, sha256, size, name in _MD5_PUBLISHED, _UNPINNED.get(name, ""))


RELEASES: dict[str, Release] = {
    name: _release(name, layout, scale) for (layout, scale), names in _BY_SHAPE.items() for name in names
}
"""Every release, by name, in the order users are shown them."""


def get_release(name: str) -> Release:
    """The release called ``name``, or a ``ConfigError`` listing the ones there are."""
    if name not in RELEASES:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(RELEASES)} or synthetic")
    return RELEASES[name]
