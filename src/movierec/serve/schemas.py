"""The HTTP service's request and response bodies: they make the OpenAPI schema.

Ids are strict: an int or a string, never a bool (``true`` is not user 1); a posted id may
also be a whole number written with a point (``1.0``), user 1 as in a ratings file.
Responses are encoded directly for speed (``app._json``); the tests validate every
endpoint's answers against these models, so the schema stays the contract.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)

from movierec.recommend.fold_in import rated_twice
from movierec.recommend.lists import MAX_K

RawId = StrictInt | StrictStr
"""A raw user or item id as the data has it: an int for MovieLens, a string for other files."""


def _whole(value: float) -> int:
    if not (math.isfinite(value) and value == math.floor(value)):
        raise ValueError("an id is a whole number or a string, not a fraction")
    return int(value)


WholeNumber = Annotated[StrictFloat, Field(multiple_of=1, ge=-(2.0**63), lt=2.0**63), AfterValidator(_whole)]
"""A whole number written with a point (1.0), within the 64-bit ids a ratings file may hold."""
PostedId = StrictInt | WholeNumber | StrictStr
"""A raw id in a request: as ``RawId``, or a whole number with a point (1.0), the id it equals."""
MAX_PAIRS = 10_000
"""The most (user, item) pairs, or posted ratings, one request may carry."""


class Error(BaseModel):
    detail: str | list = Field(description="What is wrong, and how to fix it.")


class ListedItem(BaseModel):
    item_id: RawId
    title: str | None
    rating: float | None = Field(description="The rating the user would likely give; null for a model without ratings.")
    rating_source: str | None = Field(
        description="model, fold-in, bias-fallback (a rating model that cannot fold in) or popular (the item's mean)."
    )
    source: str = Field(description="How the list was made: model, fold-in or popular (the same for everyone).")
    because: list[RawId] = Field(description="Up to 3 of the user's liked rated items that add most to its score.")


class UserRecommendations(BaseModel):
    user_id: RawId
    items: list[ListedItem]
    source: str = Field(description="model, or popular for a user with no training ratings.")


class RatedItem(BaseModel):
    item_id: RawId
    title: str | None
    rating: float


class UserRatings(BaseModel):
    user_id: RawId
    n: int
    ratings: list[RatedItem]


class Rating(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_id: PostedId
    rating: StrictFloat = Field(allow_inf_nan=False)  # a number: not true, not "4.5"


class NewUserRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ratings: list[Rating] = Field(
        default_factory=list, max_length=MAX_PAIRS, description="Each item at most once (else 422)."
    )
    k: int = Field(10, ge=1, le=MAX_K)
    exclude: list[PostedId] = Field(default_factory=list, max_length=MAX_PAIRS)
    ignore_unknown: StrictBool = Field(
        False, description="Leave out rated items the model does not know (listed in ignored) instead of a 404."
    )

    @field_validator("ratings")
    @classmethod
    def _each_item_once(cls, ratings: list[Rating]) -> list[Rating]:
        # As the CLI's --rate: two ratings of one item are a mistake, not a wish for the last one.
        twice = [repr(item) for item in rated_twice(r.item_id for r in ratings)]
        if twice:
            raise ValueError(f"item(s) {', '.join(twice[:10])} rated more than once; rate each item once")
        return ratings

    @field_validator("k", mode="before")
    @classmethod
    def _a_json_number(cls, value: object) -> object:
        # JSON Schema's integer takes 5.0 but not true or "5"; lax parsing would read true as k = 1.
        if isinstance(value, bool | str):
            raise ValueError("k must be a JSON number, not a string, true or false")
        return value


class NewUserRecommendations(BaseModel):
    items: list[ListedItem]
    source: str = Field(description="fold-in, or popular (no known ratings: the same list for everyone).")
    ignored: list[RawId] = Field(description="Posted item ids the model does not know (with ignore_unknown).")


class SimilarItem(BaseModel):
    item_id: RawId
    title: str | None
    score: float = Field(description="Similarity by the ranker's own measure (or co-rating cosine).")
    source: str


class SimilarItems(BaseModel):
    item_id: RawId
    items: list[SimilarItem]
    source: str = Field(description="The ranker's name, or co-rating for rankers without a similarity of their own.")


class Pair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: PostedId
    item_id: PostedId


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
    model: str | None = Field(description="The rating model (null for a log without ratings).")
    ranker: str
    n_users: int
    n_items: int
