"""movierec: train, evaluate and serve recommenders: lists by a ranker, ratings by a rating model.

The public API, in the order a job uses it::

    ratings = movierec.load("ml-latest-small/")            # or dataset="ml-1m", or a ratings file
    parts = movierec.split(ratings)                         # fit / val / test
    recommender, report = movierec.train(parts.fit, parts.val, "mlp")  # report: a FitReport
    movierec.evaluate(recommender, parts.test)              # {"rmse": ..., "mae": ..., ...}
    recommender.recommend(user_id, k=10)
    movierec.save(recommender, "runs/mine"); movierec.load_model("runs/mine")

Names are imported when first used, so ``import movierec`` (and the command line's
start-up, ``--help`` included) does not load PyTorch until something needs it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from movierec._version import __version__

_PUBLIC = {
    "FitReport": ("movierec.report", "FitReport"),
    "Progress": ("movierec.progress", "Progress"),
    "Recommender": ("movierec.recommend", "Recommender"),
    "SplitConfig": ("movierec.pipeline", "SplitConfig"),
    "TrainConfig": ("movierec.training", "TrainConfig"),
    "evaluate": ("movierec.evaluation", "evaluate"),
    "load": ("movierec.data.load", "load"),
    "load_model": ("movierec.persist", "load"),
    "save": ("movierec.persist", "save"),
    "split": ("movierec.pipeline", "split"),
    "train": ("movierec.fitting", "fit"),
}

if TYPE_CHECKING:
    from movierec.data.load import load
    from movierec.evaluation import evaluate
    from movierec.fitting import fit as train
    from movierec.persist import load as load_model
    from movierec.persist import save
    from movierec.pipeline import SplitConfig, split
    from movierec.progress import Progress
    from movierec.recommend import Recommender
    from movierec.report import FitReport
    from movierec.training import TrainConfig


def __getattr__(name: str) -> Any:
    try:
        module, attr = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'movierec' has no attribute {name!r}") from None
    value = getattr(import_module(module), attr)
    globals()[name] = value  # once found, an ordinary attribute
    return value


__all__ = [
    "FitReport",
    "Progress",
    "Recommender",
    "SplitConfig",
    "TrainConfig",
    "__version__",
    "evaluate",
    "load",
    "load_model",
    "save",
    "split",
    "train",
]
