"""Lists people see: a trained ranker and rater behind raw ids, titles and fallbacks.

- ``recommender``: the ``Recommender`` (lists for known and new users, predicted ratings, similar items);
- ``lists``: list settings, the one list type (``ItemList`` of ``ListItem``s) and the rule that orders it;
- ``ranked``: known users' lists in index space, scored in blocks;
- ``fold_in``: a new user's ratings checked, a rater for them, and their list;
- ``predictions``: raw ids and predicted ratings with their fallback (``Predictions``);
- ``derived``: counts and the catalogue, derived once from the training ratings;
- ``explain``: why an item is listed (``because``);
- ``catalogue``: item ids and titles, and title search;
- ``topk``: deterministic top-k kernels;
- ``similar``: item-item similarity, the ranker's own or co-rating;
- ``export``: every user's list to a CSV or Parquet file.
"""

from movierec.recommend.export import write_recommendations
from movierec.recommend.lists import BIAS_FALLBACK, FOLD_IN, MODEL, POPULAR, IndexLists, ItemList, ListConfig, ListItem
from movierec.recommend.recommender import Recommender, UnknownIdError
from movierec.recommend.similar import CO_RATING

__all__ = [
    "BIAS_FALLBACK",
    "CO_RATING",
    "FOLD_IN",
    "MODEL",
    "POPULAR",
    "IndexLists",
    "ItemList",
    "ListConfig",
    "ListItem",
    "Recommender",
    "UnknownIdError",
    "write_recommendations",
]
