"""Search spaces as data: drawn from a trial in the order written, each kind of range asked the right way."""

from __future__ import annotations

import dataclasses

import pytest

from movierec import models
from movierec.models.space import Floats, Ints, OneOf, Space


class Recording:
    """A stand-in for an Optuna trial: records each question and answers the low end (or first choice)."""

    def __init__(self) -> None:
        self.asked: list[tuple] = []

    def suggest_int(self, name, low, high, step=1, log=False):
        self.asked.append(("int", name, low, high, step, log))
        return low

    def suggest_float(self, name, low, high, log=False):
        self.asked.append(("float", name, low, high, log))
        return low

    def suggest_categorical(self, name, choices):
        self.asked.append(("choice", name, tuple(choices)))
        return choices[-1]


def test_a_space_asks_in_the_order_written_and_keeps_fixed_values():
    space = Space(
        model={"b": Floats(0.5, 2.0, log=True), "a": Ints(4, 40, step=4)},
        train={"kind": OneOf(("x", "y")), "patience": 3},
    )
    trial = Recording()
    assert space(trial) == ({"b": 0.5, "a": 4}, {"kind": "y", "patience": 3})
    asked = [("float", "b", 0.5, 2.0, True), ("int", "a", 4, 40, 4, False), ("choice", "kind", ("x", "y"))]
    assert trial.asked == asked


@pytest.mark.parametrize("name", ["mf", "mlp", "bmf"])
def test_each_space_names_real_config_fields_and_training_settings(name):
    from movierec.training import TrainConfig

    spec = models.get(name)
    fields, train = spec.space(Recording())
    spec.config_type(**fields)  # a misspelt field would be a TypeError here
    assert set(train) <= {f.name for f in dataclasses.fields(TrainConfig)}
