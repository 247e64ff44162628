"""The model registry: every model movierec can train, by name."""

from __future__ import annotations

from movierec.errors import ConfigError
from movierec.models import als, baseline, blend, bmf, ease, ials, knn, mf, mlp, popular
from movierec.models.base import ModelSpec, Ranker, RatingModel, Sweeps

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        baseline.SPEC,
        mlp.SPEC,
        mf.SPEC,
        als.SPEC,
        bmf.SPEC,
        knn.SPEC,
        blend.SPEC,
        ease.SPEC,
        ials.SPEC,
        popular.SPEC,
    )
}
"""Raters (``kind == "rater"``: they predict ratings) and rankers (``kind == "ranker"``: they order lists)."""


def get(name: str) -> ModelSpec:
    """The spec registered as ``name``; a clear error lists the choices otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None


__all__ = ["MODELS", "ModelSpec", "Ranker", "RatingModel", "Sweeps", "get"]
