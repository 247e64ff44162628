"""What a fit is to do, resolved and checked once where the job starts.

Names become specs (a rater's, a ranker's), flags become one ``TrainConfig``, and every
other setting is kept as given; nothing below the edge checks or resolves them again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from movierec import models
from movierec.errors import ConfigError
from movierec.recommend import ListConfig
from movierec.sittings import SittingConfig
from movierec.training import TrainConfig

AUTO = ("ease", "ials")
"""What ``--ranker auto`` tries, in order: the first whose catalogue limits the log fits."""


@dataclass(frozen=True)
class FitPlan:
    """Everything ``fitting.fit`` is told, each name and setting resolved and checked."""

    rater: models.ModelSpec | None
    """The rating model to fit; None: none (a log without ratings)."""
    ranker: str
    """A ranker's registered name, or ``auto`` (resolved by the catalogue's size: ``choose_ranker``)."""
    training: TrainConfig
    """How the rater is trained (and the seed and device of every fit)."""
    rater_config: object | None = None
    """The rater's settings; None: its defaults, or its candidates compared on validation."""
    ranker_config: object | None = None
    """The ranker's settings; None: its candidates compared on validation."""
    lists: ListConfig | None = None
    """How lists are made; None: chosen on validation."""
    sittings: SittingConfig | None = field(default_factory=SittingConfig)
    """What makes a sitting; None: no sitting shifts."""
    checkpoint_dir: Path | None = None
    """Where the rater's fit keeps a checkpoint after each epoch; None: nowhere."""
    resume: bool = False
    """Continue the rater's fit from the checkpoint in ``checkpoint_dir``."""

    @classmethod
    def of(
        cls,
        model: str | None,
        n_train: int | None,
        *,
        ranker: str = "auto",
        training: TrainConfig | None = None,
        train_overrides: dict | None = None,
        **settings: object,
    ) -> FitPlan:
        """The plan for rater ``model`` and ``ranker`` over ``n_train`` training ratings (what sized
        training defaults go by); ``training`` as given, else the model's defaults and ``train_overrides``."""
        spec = None if model is None else rater_spec(model)
        training = training or TrainConfig.for_model(spec, n_train, **(train_overrides or {}))
        return cls(spec, check_ranker(ranker), training, **settings)  # type: ignore[arg-type]


def rater_spec(name: str) -> models.ModelSpec:
    """The registered rating model ``name``; a ranker's name is a clear error."""
    spec = models.get(name)
    if spec.kind != "rater":
        raise ConfigError(f"{name!r} is a ranker, not a rating model; pass it as --ranker {name}")
    return spec


def check_ranker(name: str) -> str:
    """``name`` if it is ``auto`` or a registered ranker; a clear error otherwise."""
    if name != "auto" and models.get(name).kind != "ranker":
        rankers = ", ".join(n for n, s in models.MODELS.items() if s.kind == "ranker")
        raise ConfigError(f"{name!r} is a rating model, not a ranker; --ranker takes one of: auto, {rankers}")
    return name


def choose_ranker(name: str, n_users: int, n_items: int) -> tuple[str, str | None]:
    """The ranker ``auto`` means for this catalogue, and a line saying why (None when named)."""
    if check_ranker(name) != "auto":
        return name, None
    first, *rest = AUTO
    too_large = models.get(first).too_large
    why = too_large(n_users, n_items) if too_large else None
    if why is None:
        return first, None
    return rest[0], f"ranker: {rest[0]}, since {why}; --ranker {first} forces it"
