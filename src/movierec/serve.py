"""The HTTP service: a saved model loaded once and answered over JSON.

``create_app(model_dir)`` loads the model (a missing or corrupt directory is a
``ModelError`` before anything listens) and returns a FastAPI app; ``serve`` runs it
with uvicorn, on 127.0.0.1 unless told otherwise. Raw ids in paths are strings mapped
through the model's id index (MovieLens's integer ids are matched by value). An
unknown id is a 404, a bad parameter a 422, each with a JSON ``detail`` message; no
input a client can send is meant to give a 500.

Endpoints (``GET /docs`` shows the OpenAPI schema; ``GET /`` is the web page):
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
import os
import re
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from movierec import persist
from movierec._version import __version__
from movierec.errors import ConfigError, ModelError, MovierecError
from movierec.recommend import Recommender, UnknownIdError
from movierec.webpage import mount_web

RawId = int | str
"""A raw user or item id as the data has it: an int for MovieLens, a string for other files."""
MAX_K = 1000
"""The most items one list may ask for."""
MAX_PAIRS = 10_000
"""The most (user, item) pairs, or posted ratings, one request may carry."""


# --- request and response bodies (they make the OpenAPI schema) --------------------------


class Item(BaseModel):
    item_id: RawId
    title: str | None
    score: float | None = Field(description="Predicted rating; cosine similarity for similar items.")
    source: str = Field(description="Which path produced it: model, fold-in, bias-fallback, popular, ...")


class NewUserItem(Item):
    because: list[RawId] = Field(description="Up to 3 of the user's liked rated items closest to this one.")


class UserRecommendations(BaseModel):
    user_id: RawId
    items: list[Item]
    source: str = Field(description="model, or popular for a user with no training ratings.")


class RatedItem(BaseModel):
    item_id: RawId
    title: str | None
    rating: float | None


class UserRatings(BaseModel):
    user_id: RawId
    n: int
    ratings: list[RatedItem]


class Rating(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_id: RawId
    rating: float = Field(allow_inf_nan=False)


class NewUserRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ratings: list[Rating] = Field(default_factory=list, max_length=MAX_PAIRS)
    k: int = Field(10, ge=1, le=MAX_K)
    exclude: list[RawId] = Field(default_factory=list, max_length=MAX_PAIRS)


class NewUserRecommendations(BaseModel):
    items: list[NewUserItem]
    source: str = Field(description="fold-in, bias-fallback (model cannot fold in) or popular (no known ratings).")
    ignored: list[RawId] = Field(description="Posted item ids the model does not know.")


class SimilarItems(BaseModel):
    item_id: RawId
    items: list[Item]
    source: str = Field(description="item-vectors, or co-rating for models without item vectors.")


class Pair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: RawId
    item_id: RawId


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pairs: list[Pair] = Field(max_length=MAX_PAIRS)


class Prediction(BaseModel):
    user_id: RawId
    item_id: RawId
    rating: float
    source: str = Field(description="model, or fallback (an id unknown or without training ratings).")


class Predictions(BaseModel):
    predictions: list[Prediction]


class SearchHit(BaseModel):
    item_id: RawId
    title: str | None
    n_ratings: int


class SearchResults(BaseModel):
    query: str
    items: list[SearchHit]


class Health(BaseModel):
    status: str
    model: str
    n_users: int
    n_items: int


# --- the app ---------------------------------------------------------------------------------


def create_app(model_dir: str | Path, *, handler_threads: int | None = None) -> FastAPI:
    """The service for the model in ``model_dir``; a missing or corrupt directory raises ``ModelError``.

    ``handler_threads`` caps how many requests compute at once (None: anyio's default of
    40 threads); see ``serve``.
    """
    model_dir = Path(model_dir)
    rec = persist.load(model_dir)
    model_info = _model_info(model_dir)
    catalogue = _Catalogue(rec)
    health = json.dumps(
        {"status": "ok", "model": rec.model_name, "n_users": rec.index.n_users, "n_items": rec.index.n_items}
    ).encode()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if handler_threads is not None:
            # The limiter belongs to this event loop: other apps in the process keep theirs.
            anyio.to_thread.current_default_thread_limiter().total_tokens = handler_threads
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="movierec",
        version=__version__,
        description=f"Recommendations from the {rec.model_name} model in {model_dir}.",
    )

    @app.exception_handler(UnknownIdError)
    def unknown_id(_request: Request, exc: UnknownIdError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(MovierecError)
    def bad_input(_request: Request, exc: MovierecError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.get("/health", response_model=Health)
    def get_health():
        return _raw_json(health)

    @app.get("/model")
    def get_model() -> dict[str, Any]:
        """The manifest (without id lists and titles) and metrics.json of the training run."""
        return model_info

    @app.get("/users/{user_id}/recommendations", response_model=UserRecommendations)
    def user_recommendations(
        user_id: str,
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
        include_rated: bool = False,
    ):
        """Top-k for a known user; items they rated in training are left out unless include_rated."""
        rows = rec.recommend(user_id, k, exclude_seen=not include_rated)
        u = rec.user_index(user_id)
        source = rows[0]["source"] if rows else ("popular" if rec.user_counts[u] == 0 else "model")
        return _json({"user_id": rec.user_id(u), "items": rows, "source": source})

    @app.get("/users/{user_id}/ratings", response_model=UserRatings)
    def user_ratings(user_id: str):
        """A known user's training ratings, best first (rating is null for models saved without them)."""
        rows = rec.user_ratings(user_id)
        return _json({"user_id": rec.user_id(rec.user_index(user_id)), "n": len(rows), "ratings": rows})

    @app.post("/recommendations", response_model=NewUserRecommendations)
    def new_user_recommendations(body: NewUserRequest):
        """Top-k for a new user from their ratings, folded in without retraining."""
        result = rec.recommend_new_user([(r.item_id, r.rating) for r in body.ratings], body.k, exclude=body.exclude)
        return _json({"items": result.items, "source": result.source, "ignored": result.ignored})

    @app.get("/items/search", response_model=SearchResults)
    def search_items(
        q: Annotated[str, Query(min_length=1, max_length=200)],
        limit: Annotated[int, Query(ge=1, le=MAX_K)] = 20,
    ):
        """Titles containing q (case-insensitive): exact, prefix, whole words, word start, anywhere; popular first."""
        return _json({"query": q, "items": catalogue.search(q, limit)})

    @app.get("/items/{item_id}/similar", response_model=SimilarItems)
    def similar_items(item_id: str, k: Annotated[int, Query(ge=1, le=MAX_K)] = 10):
        """The k items most like this one (cosine of item vectors, or of their raters)."""
        rows = rec.similar_items(item_id, k)
        return _json({"item_id": rec.item_id(rec.item_index(item_id)), "items": rows, "source": rec.similarity_source})

    @app.post("/predict", response_model=Predictions)
    def predict(body: PredictRequest):
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

    @app.exception_handler(RequestValidationError)
    def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler, minus the echoed input, which may not be JSON-safe (NaN, bytes).
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    mount_web(app)  # the page for people at /, drawn over the endpoints above
    return app


def serve(
    model_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    handler_threads: int | None = 1,
    torch_threads: int | None = 1,
    access_log: bool = False,
    log_level: str = "info",
) -> None:
    """Load the model, then serve it with uvicorn until interrupted.

    Concurrency, measured on a busy 2-core box at ML-20M shape (bench/serve.py):
    - ``torch_threads`` (None: torch's default): one per process. A request scores one
      user, too little work to split: top-10 took 0.45 ms on one thread, 4.6 ms on two.
    - ``handler_threads`` (None: anyio's 40): requests computed at once in a process. One
      keeps the event loop parsing the next requests while it computes, and spares 40
      threads fighting over the GIL: server CPU per request fell from about 2 ms to 1.
    - ``workers``: processes, each with its own copy of the model, to use more cores for
      the Python parts (routing, encoding) that the GIL serialises.
    """
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    settings = {"model_dir": str(model_dir), "handler_threads": handler_threads, "torch_threads": torch_threads}
    if workers == 1:
        app = _configured_app(settings)
        uvicorn_run = _uvicorn_run(host, port, access_log, log_level)
        uvicorn_run(app)
        return
    # Each worker process builds its own app from the environment; load once here first
    # so a missing or corrupt model directory stops the command before anything listens.
    create_app(model_dir)
    os.environ[_SETTINGS_ENV] = json.dumps(settings)
    _uvicorn_run(host, port, access_log, log_level)(
        "movierec.serve:app_from_environment", factory=True, workers=workers
    )


_SETTINGS_ENV = "MOVIEREC_SERVE_SETTINGS"


def app_from_environment() -> FastAPI:
    """The app a uvicorn worker process builds, from the settings ``serve`` left in the environment."""
    return _configured_app(json.loads(os.environ[_SETTINGS_ENV]))


def _configured_app(settings: dict) -> FastAPI:
    import torch

    if settings["torch_threads"] is not None:
        torch.set_num_threads(settings["torch_threads"])
    return create_app(settings["model_dir"], handler_threads=settings["handler_threads"])


def _uvicorn_run(host: str, port: int, access_log: bool, log_level: str):
    import uvicorn

    def run(app, **extra) -> None:
        uvicorn.run(app, host=host, port=port, access_log=access_log, log_level=log_level, **extra)

    return run


# --- helpers -----------------------------------------------------------------------------------


def _json(content: dict) -> Response:
    # Encoded directly: the rows are already plain JSON types, and FastAPI's response-model
    # pass would re-validate every item of every list (the response models document only).
    return _raw_json(json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode())


def _raw_json(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")


def _model_info(model_dir: Path) -> dict:
    """The manifest without its long lists, plus metrics.json when the run wrote one."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    info = {k: v for k, v in manifest.items() if k not in ("user_ids", "item_ids", "titles")}
    metrics_path = model_dir / "metrics.json"
    info["metrics"] = None
    if metrics_path.is_file():
        try:
            info["metrics"] = json.loads(metrics_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{metrics_path}: not valid JSON ({exc}); the model directory is corrupt") from None
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


_YEAR = re.compile(r"\s*\(\d{4}\)\s*$")


class _Catalogue:
    """Lower-cased titles for search.

    Ranked: the whole title (with or without its "(year)"), then titles starting with the
    query, then the query as whole words, then starting a word, then anywhere; within a
    tier, the most rated first, then the lower item index.
    """

    def __init__(self, rec: Recommender) -> None:
        self.rec = rec
        titles = [] if rec.titles is None else [str(t).lower() for t in rec.titles]
        self.titles = titles
        self.bare = [_YEAR.sub("", t) for t in titles]  # "toy story (1995)" -> "toy story"
        self.counts = rec.item_counts

    def search(self, query: str, limit: int) -> list[dict]:
        q = " ".join(query.lower().split())
        if not q:
            return []
        hits = []
        for i, title in enumerate(self.titles):
            at = title.find(q)
            if at < 0:
                continue
            end = at + len(q)
            starts_word = at == 0 or not title[at - 1].isalnum()
            ends_word = end == len(title) or not title[end].isalnum()
            if title == q or self.bare[i] == q:
                tier = 0
            elif at == 0:
                tier = 1
            elif starts_word and ends_word:
                tier = 2
            elif starts_word:
                tier = 3
            else:
                tier = 4
            hits.append((tier, -int(self.counts[i]), i))
        hits.sort()
        return [self.rec.item_summary(i) for _, _, i in hits[:limit]]
