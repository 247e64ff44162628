"""movierec: train, evaluate and serve rating-based recommenders.

The public API, in the order a job uses it::

    ratings = movierec.load("ml-latest-small/")            # or dataset="ml-1m", or a ratings file
    parts = movierec.split(ratings)                         # fit / val / test
    recommender, history = movierec.train(parts.fit, parts.val, "mlp")
    movierec.evaluate(recommender, parts.test)              # {"rmse": ..., "mae": ..., ...}
    recommender.recommend(user_id, k=10)
    movierec.save(recommender, "runs/mine"); movierec.load_model("runs/mine")
"""

from movierec._version import __version__
from movierec.data.load import load
from movierec.evaluate import evaluate
from movierec.persist import load as load_model
from movierec.persist import save
from movierec.pipeline import SplitConfig, split
from movierec.pipeline import fit as train
from movierec.recommend import Recommender
from movierec.training import TrainConfig

__all__ = [
    "__version__",
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
