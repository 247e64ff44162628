"""Lists people see: a trained ranker and rater behind raw ids, titles and fallbacks.

- ``recommender``: the ``Recommender`` (lists for known and new users, predicted ratings, similar items);
- ``catalogue``: item ids and titles, and title search;
- ``topk``: deterministic top-k kernels;
- ``similar``: co-rating similarity for rankers without their own;
- ``export``: every user's list to a CSV or Parquet file.
"""

from movierec.recommend.export import write_recommendations
from movierec.recommend.recommender import (
    BIAS_FALLBACK,
    CO_RATING,
    FOLD_IN,
    MODEL,
    POPULAR,
    ListConfig,
    NewUserRecommendations,
    Recommender,
    TopN,
    UnknownIdError,
)

__all__ = [
    "BIAS_FALLBACK",
    "CO_RATING",
    "FOLD_IN",
    "MODEL",
    "POPULAR",
    "ListConfig",
    "NewUserRecommendations",
    "Recommender",
    "TopN",
    "UnknownIdError",
    "write_recommendations",
]
