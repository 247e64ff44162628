"""Ratings logs: reading, id indexing, synthetic data and splits."""

from movierec.data.ids import IdIndex
from movierec.data.ratings import Ratings

__all__ = ["IdIndex", "Ratings"]
