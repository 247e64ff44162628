"""movierec: train, evaluate and serve rating-based recommenders.

The public API, in the order a job uses it::

    ratings = movierec.load("ml-latest-small/")            # or dataset="ml-1m", or a ratings file
    parts = movierec.split(ratings)                         # fit / val / test
    recommender, history = movierec.train(parts.fit, parts.val, "mlp")
    movierec.evaluate(recommender, parts.test)              # {"rmse": ..., "mae": ..., ...}
    recommender.recommend(user_id, k=10)
    movierec.save(recommender, "runs/mine"); movierec.load_model("runs/mine")
"""

__version__ = "0.1.0"

from movierec.data.load import load  # noqa: E402
from movierec.evaluate import evaluate  # noqa: E402
from movierec.persist import load as load_model  # noqa: E402
from movierec.persist import save  # noqa: E402
from movierec.pipeline import SplitConfig, split  # noqa: E402
from movierec.pipeline import fit as train  # noqa: E402
from movierec.recommend import Recommender  # noqa: E402
from movierec.training import TrainConfig  # noqa: E402

__all__ = [
    "Recommender",
    "SplitConfig",
    "TrainConfig",
    "evaluate",
    "load",
    "load_model",
    "save",
    "split",
    "train",
]
