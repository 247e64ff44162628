"""The HTTP app: a saved recommender loaded once and answered over JSON.

``create_app(model_dir)`` loads the model (a missing or corrupt directory is a
``ModelError`` before anything listens) and returns a FastAPI app. Raw ids in paths are
strings mapped through the model's id index (MovieLens's integer ids are matched by
value). An unknown id is a 404, a bad parameter a 422, a body over ``MAX_BODY_BYTES`` a
413 (refused before it is read), a Host header the app does not answer to a 400; each
with a JSON ``detail`` message. No input a client can send is meant to give a 500.

Endpoints (``GET /docs`` shows the OpenAPI schema, from files installed with the
package; ``GET /`` is the web page):
- ``GET /health``; ``GET /model`` (manifest and metrics.json, for a model page);
- ``GET /users/{user_id}/recommendations``; ``GET /users/{user_id}/ratings``;
- ``POST /recommendations`` (a new user from posted ratings, folded in);
- ``GET /items/{item_id}/similar``; ``GET /items/search``; ``POST /predict``.

The handlers (``routes``) are plain functions, which FastAPI runs in its thread pool (one
thread by default under ``serve``), so the event loop keeps reading requests while a model
scores; torch and numpy release the GIL while they compute. ``errors`` says how refusals
answer, ``asgi`` guards the body size and Host, ``responses`` encodes the JSON.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI

from movierec import persist
from movierec._version import __version__
from movierec.serve import apidocs, errors, routes
from movierec.serve.asgi import BodyLimit, HostCheck
from movierec.serve.responses import model_info
from movierec.webpage import mount_web

MAX_BODY_BYTES = 4 << 20
"""The largest request body read (4 MiB: 10,000 posted ratings take about 0.5 MiB)."""


def create_app(
    model_dir: str | Path, *, handler_threads: int | None = None, allowed_hosts: Iterable[str] | None = None
) -> FastAPI:
    """The service for the model in ``model_dir``; a missing or corrupt directory raises ``ModelError``.

    ``handler_threads`` caps how many requests compute at once (None: anyio's default of
    40 threads); see ``serve.run``. ``allowed_hosts``: the host names the app answers
    (None: any); a server bound to loopback answers only loopback names, so a web page
    elsewhere cannot reach it through DNS rebinding.
    """
    model_dir = Path(model_dir)
    rec = persist.load(model_dir)
    info = model_info(model_dir)
    app = FastAPI(
        lifespan=_lifespan(handler_threads),
        title="movierec",
        version=__version__,
        description=f"Lists from the {rec.ranker_name} ranker, ratings from {rec.rater_name or 'no'} rating model, "
        f"in {model_dir}.",
        docs_url=None,
        redoc_url=None,
    )
    apidocs.mount(app)
    _declare_scale(app, rec.scale)
    errors.add_handlers(app)
    routes.add_service(app, rec, info)
    routes.add_users(app, rec)
    routes.add_items(app, rec)
    routes.add_predictions(app, rec)
    mount_web(app)  # the page for people at /, drawn over the endpoints above
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)  # type: ignore[arg-type]
    if allowed_hosts is not None:
        app.add_middleware(HostCheck, allowed=allowed_hosts)  # type: ignore[arg-type]
    return app


def _lifespan(handler_threads: int | None) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if handler_threads is not None:
            # The limiter belongs to this event loop: other apps in the process keep theirs.
            anyio.to_thread.current_default_thread_limiter().total_tokens = handler_threads
        yield

    return lifespan


def _declare_scale(app: FastAPI, scale: tuple[float, float]) -> None:
    """Put this model's rating scale into the schema, so what it declares valid is what it accepts."""
    generate = app.openapi

    def openapi() -> dict:
        schema = generate()  # FastAPI's, built once and cached on the app
        rating = schema["components"]["schemas"]["Rating"]["properties"]["rating"]
        rating.update(minimum=scale[0], maximum=scale[1])
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
