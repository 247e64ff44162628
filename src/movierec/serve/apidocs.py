"""The API's documentation pages, served from an installed package's files: no CDN, so they work offline.

``/docs`` is Swagger UI 5 and ``/redoc`` ReDoc 2, both able to read the OpenAPI 3.1 schema
FastAPI writes (Swagger UI 4 refuses it: "does not specify a valid version field"). The
scripts come from the ``fastapi-offline`` package, which ships them for exactly this.
Every URL is relative, so the pages also work behind a proxy that adds a path prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "docs-assets"
"""Where the pages' scripts, style sheet and icon are mounted, under the app's root."""
OFFLINE = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)
"""The pages' Content-Security-Policy: nothing from elsewhere, so ReDoc's footer logo (on a CDN) is
never fetched, and a page that works here also works with no network. Inline scripts start each page."""
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
"""The files the two pages load."""


def assets_dir() -> Path:
    """The folder of Swagger UI's and ReDoc's files inside the installed ``fastapi-offline`` package."""
    import fastapi_offline

    folder = Path(fastapi_offline.__file__).parent / "static"
    missing = [name for name in ASSETS if not (folder / name).is_file()]
    if missing:  # a changed package layout would otherwise show as blank pages
        raise RuntimeError(
            f"{folder} lacks {', '.join(missing)}: reinstall the documentation assets "
            "(pip install --force-reinstall fastapi-offline)"
        )
    return folder


def mount(app: FastAPI, title: str = "movierec API") -> None:
    """Add ``/docs`` (Swagger UI), ``/redoc`` (ReDoc) and their files at ``/docs-assets`` to ``app``."""
    app.mount(f"/{ASSETS_URL}", StaticFiles(directory=assets_dir()), name=ASSETS_URL)
    pages = {
        "docs": partial(
            get_swagger_ui_html,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            # No badge from swagger.io's online validator (fetched for any host but localhost).
            swagger_ui_parameters={"validatorUrl": None},
        ),
        "redoc": partial(
            get_redoc_html,
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,  # fonts from Google are a network fetch; the browser's own fonts do
        ),
    }
    for name, page in pages.items():
        app.add_api_route(f"/{name}", _offline(page, title), name=name, include_in_schema=False)


def _offline(page: Callable[..., HTMLResponse], title: str) -> Callable[[], HTMLResponse]:
    """The endpoint serving ``page`` for the app's schema, under the offline Content-Security-Policy."""

    def endpoint() -> HTMLResponse:
        response = page(openapi_url="openapi.json", title=title)
        response.headers["Content-Security-Policy"] = OFFLINE
        return response

    return endpoint
