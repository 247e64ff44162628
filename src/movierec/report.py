"""What a fit did, beside what it made: the choices, the histories and the time each phase took."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from movierec.training import Epoch, TrainConfig, as_json


@dataclass(frozen=True)
class FitReport:
    """How ``fitting.fit`` made a recommender: returned beside it, written into its manifest."""

    dataset: str
    """The name of the training log."""
    implicit: bool
    """True for a log without ratings (only a ranker was fitted)."""
    train_config: TrainConfig
    """How the rater was trained."""
    history: tuple[Epoch, ...] = ()
    """The kept rater's history, one row per sweep (empty without a rater)."""
    ranker_history: tuple[Epoch, ...] = ()
    """The ranker's refit on fit and validation parts, one row per sweep."""
    ranker_choice: str | None = None
    """Why ``auto`` chose the ranker it did, where that needs saying; else None."""
    rater_choice: str | None = None
    """Which of the rater's candidate settings won on validation, where several were compared."""
    sittings_choice: str | None = None
    """Whether sitting shifts were fitted, and how they did on validation."""
    lists_choice: str | None = None
    """The ranker's settings and list settings chosen, and how."""
    lists_tried: tuple[dict, ...] = ()
    """Every combination of ranker and list settings scored on validation."""
    rater_seconds: float = 0.0
    """Seconds of every rater fit together (each candidate's, where settings were compared)."""
    seconds: Mapping[str, float] = field(default_factory=dict)
    """Wall seconds of each phase of the fit (``rater``, ``sittings``, ``lists``, ``ranker``)."""

    @property
    def ranker_seconds(self) -> float:
        """Seconds of the ranker's refit sweeps."""
        return sum(h.seconds for h in self.ranker_history)

    @property
    def choices(self) -> list[str]:
        """The lines saying what was chosen, in the order a run shows them."""
        lines = (self.rater_choice, self.sittings_choice, self.ranker_choice, self.lists_choice)
        return [line for line in lines if line]

    def as_info(self) -> dict:
        """The report as the manifest's ``info`` keeps it (JSON-ready)."""
        return {
            "dataset": self.dataset,
            "implicit": self.implicit,
            "train_config": asdict(self.train_config),
            "ranker_history": as_json(list(self.ranker_history)),
            "ranker_choice": self.ranker_choice,
            "rater_choice": self.rater_choice,
            "rater_seconds": self.rater_seconds,
            "sittings_choice": self.sittings_choice,
            "lists_choice": self.lists_choice,
            "lists_tried": list(self.lists_tried),
        }
