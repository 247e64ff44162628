"""Lists people see: a trained ranker and rater behind raw ids, titles and fallbacks.

- ``recommender``: the ``Recommender`` (lists for known and new users, predicted ratings, similar items);
- ``fold_in``: a new user's ratings checked, and a rater for them;
- ``lists``: list settings and shapes, and the rule that orders a list from ranker and rater;
- ``catalogue``: item ids and titles, and title search;
- ``topk``: deterministic top-k kernels;
- ``similar``: item-item similarity, the ranker's own or co-rating;
- ``export``: every user's list to a CSV or Parquet file.
"""

from movierec.recommend.export import write_recommendations
from movierec.recommend.lists import BIAS_FALLBACK, FOLD_IN, MODEL, POPULAR, ListConfig, NewUserRecommendations, TopN
from movierec.recommend.recommender import Recommender, UnknownIdError
from movierec.recommend.similar import CO_RATING

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
