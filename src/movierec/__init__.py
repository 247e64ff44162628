"""movierec: train, evaluate and serve rating-based recommenders."""

__version__ = "0.1.0"
