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

The handlers are plain functions, which FastAPI runs in its thread pool (one thread by
default under ``serve``), so the event loop keeps reading requests while a model scores;
torch and numpy release the GIL while they compute.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from movierec import manifest as manifest_file
from movierec import persist
from movierec._version import __version__
from movierec.errors import MovierecError
from movierec.recommend import UnknownIdError
from movierec.serve import schemas
from movierec.serve.schemas import MAX_K
from movierec.webpage import mount_web

MAX_BODY_BYTES = 4 << 20
"""The largest request body read (4 MiB: 10,000 posted ratings take about 0.5 MiB)."""
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.Error, "description": "A body that is not JSON, or a Host this server does not answer to."},
    404: {"model": schemas.Error, "description": "An id the model was not trained with."},
    422: {"model": schemas.Error, "description": "A parameter or body that cannot work."},
}
POST_ERRORS = {**ERRORS, 413: {"model": schemas.Error, "description": "A body over the size limit (4 MiB)."}}


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
    model_info = _model_info(model_dir)
    health = json.dumps(
        {
            "status": "ok",
            "model": rec.rater_name,
            "ranker": rec.ranker_name,
            "n_users": rec.index.n_users,
            "n_items": rec.index.n_items,
        }
    ).encode()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # noqa: ANN202
        if handler_threads is not None:
            # The limiter belongs to this event loop: other apps in the process keep theirs.
            anyio.to_thread.current_default_thread_limiter().total_tokens = handler_threads
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="movierec",
        version=__version__,
        description=f"Lists from the {rec.ranker_name} ranker, ratings from {rec.rater_name or 'no'} rating model, "
        f"in {model_dir}.",
        docs_url=None,
        redoc_url=None,
    )
    _mount_docs(app)
    _declare_scale(app, rec.scale)

    @app.exception_handler(UnknownIdError)
    def unknown_id(_request: Request, exc: UnknownIdError) -> Response:
        return _json({"detail": str(exc)}, status_code=404)

    @app.exception_handler(MovierecError)
    def bad_input(_request: Request, exc: MovierecError) -> Response:
        return _json({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own handler, minus the echoed input, which may not be JSON-safe (NaN, bytes).
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        if any(e.get("type") == "json_invalid" for e in errors):  # not JSON at all: 400, as documented
            return _json({"detail": f"the body is not valid JSON: {errors[0].get('msg', '')}"}, status_code=400)
        if any(e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",) for e in errors):
            return _json({"detail": "the body is empty; send a JSON object"}, status_code=400)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if request.method == "POST" and not (kind == "application/json" or kind.endswith("+json")):
            # FastAPI reads such a body as text ("Input should be a valid dictionary"); curl -d sends a form.
            return _json(
                {"detail": f"the body is sent as {kind or 'no content type'}; send JSON with "
                 "Content-Type: application/json (curl: -H 'content-type: application/json')"},
                status_code=400,
            )  # fmt: skip
        return _json({"detail": errors}, status_code=422)

    def get(path: str, model: type | None) -> Callable:
        """A GET route that also answers HEAD (headers only), the HEAD left out of the schema."""

        def register(handler: Callable) -> Callable:
            app.head(path, include_in_schema=False)(handler)
            return app.get(path, response_model=model, responses=ERRORS)(handler)

        return register

    @get("/health", schemas.Health)
    def get_health():  # noqa: ANN202
        return _raw_json(health)

    @get("/model", None)
    def get_model() -> dict[str, Any]:
        """The manifest (without id lists and titles) and metrics.json of the training run."""
        return model_info

    @get("/users/{user_id}/recommendations", schemas.UserRecommendations)
    def user_recommendations(
        user_id: str,
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
        include_rated: bool = False,
    ):  # noqa: ANN202
        """Top-k for a known user, each item with its predicted rating and the rated items behind it."""
        rows = rec.recommend(user_id, k, exclude_seen=not include_rated)
        u = rec.user_index(user_id)
        source = rows[0]["source"] if rows else ("popular" if rec.user_counts[u] == 0 else "model")
        return _json({"user_id": rec.user_id(u), "items": _with_because(rows), "source": source})

    @get("/users/{user_id}/ratings", schemas.UserRatings)
    def user_ratings(user_id: str):  # noqa: ANN202
        """A known user's training ratings, best first."""
        rows = rec.user_ratings(user_id)
        return _json({"user_id": rec.user_id(rec.user_index(user_id)), "n": len(rows), "ratings": rows})

    @app.post("/recommendations", response_model=schemas.NewUserRecommendations, responses=POST_ERRORS)
    def new_user_recommendations(body: schemas.NewUserRequest):  # noqa: ANN202
        """Top-k for a new user from their ratings, folded in without retraining.

        A rated item the model does not know is a 404 naming it, unless ``ignore_unknown``.
        """
        result = rec.recommend_new_user([(r.item_id, r.rating) for r in body.ratings], body.k, exclude=body.exclude)
        if result.ignored and not body.ignore_unknown:
            raise UnknownIdError("item", result.ignored[0] if len(result.ignored) == 1 else result.ignored[:10])
        return _json({"items": _with_because(result.items), "source": result.source, "ignored": result.ignored})

    @get("/items/search", schemas.SearchResults)
    def search_items(
        q: Annotated[str, Query(min_length=1, max_length=200)],
        limit: Annotated[int, Query(ge=1, le=MAX_K)] = 20,
    ):  # noqa: ANN202
        """Titles containing q (case-insensitive): exact, prefix, whole words, word start, anywhere; popular first."""
        return _json({"query": q, "items": rec.catalogue.search(q, limit)})

    @get("/items/{item_id}/similar", schemas.SimilarItems)
    def similar_items(item_id: str, k: Annotated[int, Query(ge=1, le=MAX_K)] = 10):  # noqa: ANN202
        """The k items most like this one, by the ranker's own similarity."""
        rows = rec.similar_items(item_id, k)
        return _json({"item_id": rec.item_id(rec.item_index(item_id)), "items": rows, "source": rec.similarity_source})

    @app.post("/predict", response_model=schemas.Predictions, responses=POST_ERRORS)
    def predict(body: schemas.PredictRequest):  # noqa: ANN202
        """Predicted ratings for (user, item) pairs; unknown ids get the fallback, marked as such."""
        users = [p.user_id for p in body.pairs]
        items = [p.item_id for p in body.pairs]
        if not users:
            return _json({"predictions": []})
        pred, by_model = rec.predict_with_source(users, items)
        return _json(
            {
                "predictions": [
                    {"user_id": u, "item_id": i, "rating": round(float(r), 4), "source": "model" if m else "fallback"}
                    for u, i, r, m in zip(users, items, pred, by_model, strict=True)
                ]
            }
        )

    mount_web(app)  # the page for people at /, drawn over the endpoints above
    app.add_middleware(_BodyLimit, limit=MAX_BODY_BYTES)  # type: ignore[arg-type]
    if allowed_hosts is not None:
        app.add_middleware(_HostCheck, allowed=allowed_hosts)  # type: ignore[arg-type]
    return app


def _with_because(rows: list[dict]) -> list[dict]:
    # Popular lists explain nothing: an empty list keeps one row shape for every answer.
    for row in rows:
        row.setdefault("because", [])
    return rows


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the swagger-ui-bundle package's files: no CDN, so it works offline."""
    import swagger_ui_bundle

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="openapi.json",
            title="movierec API",
            swagger_js_url="docs-assets/swagger-ui-bundle.js",
            swagger_css_url="docs-assets/swagger-ui.css",
            swagger_favicon_url="docs-assets/favicon-32x32.png",
        )


# --- ASGI guards ---------------------------------------------------------------------------------

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class _BodyLimit:
    """413 for a body over ``limit`` bytes: by its Content-Length before reading, or as it streams in."""

    def __init__(self, app: Callable, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await _reject(send, 413, f"the request body is over {self.limit >> 20} MiB")
            return
        seen, too_large = 0, False

        async def limited() -> dict:
            nonlocal seen, too_large
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                # Cut the body short rather than raise: FastAPI would turn an exception in its
                # body reader into a 400. The app's answer to the cut body is dropped for ours.
                too_large = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def unless_too_large(message: dict) -> None:
            if not too_large:
                await send(message)

        await self.app(scope, limited, unless_too_large)
        if too_large:
            await _reject(send, 413, f"the request body is over {self.limit >> 20} MiB")


class _HostCheck:
    """400 for a Host header outside ``allowed`` (names compared without their port)."""

    def __init__(self, app: Callable, allowed: Iterable[str]) -> None:
        self.app, self.allowed = app, {h.lower() for h in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
            name = host.rsplit("]", 1)[0] + "]" if host.startswith("[") else host.split(":", 1)[0]
            if name not in self.allowed:
                await _reject(send, 400, f"this server answers to {', '.join(sorted(self.allowed))} only")
                return
        await self.app(scope, receive, send)


async def _reject(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- helpers -----------------------------------------------------------------------------------------


def _json(content: dict, status_code: int = 200) -> Response:
    # Encoded directly: the rows are already plain JSON types, and FastAPI's response-model
    # pass would re-validate every item of every list (tests check them against the models).
    # ASCII with \u escapes: an id sent with a lone surrogate ("\ud800", valid JSON, not
    # valid UTF-8) is echoed back in an error or "ignored" list, and must not be a 500.
    return _raw_json(json.dumps(content, allow_nan=False, separators=(",", ":")).encode(), status_code)


def _raw_json(body: bytes, status_code: int = 200) -> Response:
    return Response(content=body, media_type="application/json", status_code=status_code)


def _model_info(model_dir: Path) -> dict:
    """The manifest without its long lists, plus metrics.json when the run wrote one."""
    manifest = persist.read_manifest(model_dir)
    info = {k: v for k, v in manifest.items() if k not in ("user_ids", "item_ids", "titles")}
    info["metrics"] = manifest_file.read_metrics(model_dir)
    return _finite(info)


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None: strict JSON has no place for them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _declare_scale(app: FastAPI, scale: tuple[float, float]) -> None:
    """Put this model's rating scale into the schema, so what it declares valid is what it accepts."""
    generate = app.openapi

    def openapi() -> dict:
        schema = generate()  # FastAPI's, built once and cached on the app
        rating = schema["components"]["schemas"]["Rating"]["properties"]["rating"]
        rating.update(minimum=scale[0], maximum=scale[1])
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
