"""The endpoints, by what they answer about: the service, users, items, predictions.

Each handler turns ids into the recommender's typed answer and that into JSON through
``movierec.bodies``, the command line's serialisers too. Handlers are plain functions,
which FastAPI runs in its thread pool (see ``app``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Query

from movierec import bodies
from movierec.recommend import Recommender, UnknownIdError
from movierec.serve import schemas
from movierec.serve.responses import json_response, raw_json
from movierec.serve.schemas import MAX_K

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.Error, "description": "A body that is not JSON, or a Host this server does not answer to."},
    404: {"model": schemas.Error, "description": "An id the model was not trained with."},
    422: {"model": schemas.Error, "description": "A parameter or body that cannot work."},
}
POST_ERRORS = {**ERRORS, 413: {"model": schemas.Error, "description": "A body over the size limit (4 MiB)."}}


def _get(app: FastAPI, path: str, model: type | None) -> Callable:
    """A GET route that also answers HEAD (headers only), the HEAD left out of the schema."""

    def register(handler: Callable) -> Callable:
        app.head(path, include_in_schema=False)(handler)
        return app.get(path, response_model=model, responses=ERRORS)(handler)

    return register


def add_service(app: FastAPI, rec: Recommender, model_info: dict) -> None:
    """``GET /health`` and ``GET /model``."""
    health = json.dumps(
        {
            "status": "ok",
            "model": rec.rater_name,
            "ranker": rec.ranker_name,
            "n_users": rec.index.n_users,
            "n_items": rec.index.n_items,
        }
    ).encode()

    @_get(app, "/health", schemas.Health)
    def get_health():  # noqa: ANN202
        return raw_json(health)

    @_get(app, "/model", None)
    def get_model() -> dict[str, Any]:
        """The manifest (without id lists and titles) and metrics.json of the training run."""
        return model_info


def add_users(app: FastAPI, rec: Recommender) -> None:
    """A known user's list and ratings, and a new user's list from posted ratings."""

    @_get(app, "/users/{user_id}/recommendations", schemas.UserRecommendations)
    def user_recommendations(
        user_id: str,
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
        include_rated: bool = False,
    ):  # noqa: ANN202
        """Top-k for a known user, each item with its predicted rating and the rated items behind it."""
        found = rec.recommend(user_id, k, exclude_seen=not include_rated)
        return json_response(bodies.known_user_list(rec.user_id(rec.user_index(user_id)), found))

    @_get(app, "/users/{user_id}/ratings", schemas.UserRatings)
    def user_ratings(user_id: str):  # noqa: ANN202
        """A known user's training ratings, best first."""
        rows = rec.user_ratings(user_id)
        return json_response({"user_id": rec.user_id(rec.user_index(user_id)), "n": len(rows), "ratings": rows})

    @app.post("/recommendations", response_model=schemas.NewUserRecommendations, responses=POST_ERRORS)
    def new_user_recommendations(body: schemas.NewUserRequest):  # noqa: ANN202
        """Top-k for a new user from their ratings, folded in without retraining.

        A rated item the model does not know is a 404 naming it, unless ``ignore_unknown``.
        """
        found = rec.recommend_new_user([(r.item_id, r.rating) for r in body.ratings], body.k, exclude=body.exclude)
        ignored = list(found.ignored)
        if ignored and not body.ignore_unknown:
            raise UnknownIdError("item", ignored[0] if len(ignored) == 1 else ignored[:10])
        return json_response(bodies.new_user_list(found))


def add_items(app: FastAPI, rec: Recommender) -> None:
    """Title search and similar items."""

    @_get(app, "/items/search", schemas.SearchResults)
    def search_items(
        q: Annotated[str, Query(min_length=1, max_length=200)],
        limit: Annotated[int, Query(ge=1, le=MAX_K)] = 20,
    ):  # noqa: ANN202
        """Titles containing q (case-insensitive): exact, prefix, whole words, word start, anywhere; popular first."""
        return json_response({"query": q, "items": rec.catalogue.search(q, limit)})

    @_get(app, "/items/{item_id}/similar", schemas.SimilarItems)
    def similar_items(item_id: str, k: Annotated[int, Query(ge=1, le=MAX_K)] = 10):  # noqa: ANN202
        """The k items most like this one, by the ranker's own similarity."""
        found = rec.similar_items(item_id, k)
        return json_response(bodies.similar_list(rec.item_id(rec.item_index(item_id)), found))


def add_predictions(app: FastAPI, rec: Recommender) -> None:
    """``POST /predict``."""

    @app.post("/predict", response_model=schemas.Predictions, responses=POST_ERRORS)
    def predict(body: schemas.PredictRequest):  # noqa: ANN202
        """Predicted ratings for (user, item) pairs; unknown ids get the fallback, marked as such."""
        users = [p.user_id for p in body.pairs]
        items = [p.item_id for p in body.pairs]
        if not users:
            return json_response({"predictions": []})
        pred, by_model = rec.predict_with_source(users, items)
        return json_response(
            {
                "predictions": [
                    {"user_id": u, "item_id": i, "rating": round(float(r), 4), "source": "model" if m else "fallback"}
                    for u, i, r, m in zip(users, items, pred, by_model, strict=True)
                ]
            }
        )
