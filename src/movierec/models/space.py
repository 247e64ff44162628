"""Search spaces for ``movierec tune``: each setting a range, a choice or a fixed value, drawn from a trial.

A model's space (``ModelSpec.space``) is called with an Optuna trial and returns (config
fields, training settings). Written as data, a space says only what it searches; drawing
it is this module's one loop, which asks the trial in the order the settings are written
(the order a seeded search depends on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Ints:
    """A whole number from ``low`` to ``high``, both included."""

    low: int
    """Smallest value tried."""
    high: int
    """Largest value tried."""
    log: bool = False
    """Draw evenly on a log scale (for sizes, where 16 to 32 matters as much as 128 to 256)."""
    step: int = 1
    """Only values ``low + n * step``."""


@dataclass(frozen=True)
class Floats:
    """A number from ``low`` to ``high``."""

    low: float
    """Smallest value tried."""
    high: float
    """Largest value tried."""
    log: bool = False
    """Draw evenly on a log scale (for rates and penalties spanning decades)."""


@dataclass(frozen=True)
class OneOf:
    """One of a few values."""

    choices: tuple
    """The values tried."""


@dataclass(frozen=True)
class Space:
    """What ``movierec tune`` searches for one model: ``space(trial)`` -> (config fields, training settings)."""

    model: dict[str, Any]
    """Config fields: each an ``Ints``, ``Floats`` or ``OneOf``, or a value kept fixed."""
    train: dict[str, Any] = field(default_factory=dict)
    """Training settings, likewise."""

    def __call__(self, trial: Any) -> tuple[dict, dict]:
        return _draw(trial, self.model), _draw(trial, self.train)


def _draw(trial: Any, settings: dict[str, Any]) -> dict:
    drawn = {}
    for name, what in settings.items():
        if isinstance(what, Ints):
            drawn[name] = trial.suggest_int(name, what.low, what.high, step=what.step, log=what.log)
        elif isinstance(what, Floats):
            drawn[name] = trial.suggest_float(name, what.low, what.high, log=what.log)
        elif isinstance(what, OneOf):
            drawn[name] = trial.suggest_categorical(name, list(what.choices))
        else:
            drawn[name] = what
    return drawn
