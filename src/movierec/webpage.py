"""The web page for people, served by the API's own process from files in the package.

``mount_web(app)`` adds ``GET /`` (the page) and ``/web/*`` (its script, styles) to a
FastAPI app. The page is plain HTML, CSS and JavaScript in ``movierec/web/`` with no
build step and nothing fetched from elsewhere, so it works offline; it talks only to the
app's JSON endpoints, with paths relative to ``/``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).with_name("web")
"""Where the page's files live inside the installed package."""


def mount_web(app: FastAPI) -> None:
    """Serve the page at ``/`` and its assets under ``/web``, beside the app's API routes."""
    index = WEB_DIR / "index.html"
    if not index.is_file():
        # A broken install (package data left out) should say so, not serve 404s.
        raise FileNotFoundError(f"{index} is missing; reinstall movierec (its package data includes web/*)")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        # no-cache: the browser revalidates (cheap, ETag) so an upgraded package shows at once.
        return FileResponse(index, media_type="text/html", headers={"cache-control": "no-cache"})

    app.mount("/web", _Assets(directory=WEB_DIR), name="web")


class _Assets(StaticFiles):
    """Static files that the browser revalidates, so a new version is never hidden by a cache."""

    def file_response(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = super().file_response(*args, **kwargs)
        response.headers["cache-control"] = "no-cache"
        return response
