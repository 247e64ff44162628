"""The one reader of stored values: kinds, ranges and sizes, and text made safe to print."""

from __future__ import annotations

import dataclasses

import pytest

from movierec import stored


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b]0;retitled\x07Heat (1995)", "Heat (1995)"),  # OSC: sets the terminal's title
        ("\x1b]8;;http://x\x1b\\Heat\x1b]8;;\x1b\\", "Heat"),  # OSC 8 hyperlink, ended by ESC \
        ("\x1b[2J\x1b[1;31mHeat\x1b[0m", "Heat"),  # CSI: clears the screen, colours
        ("Heat\x9b2J\x00\x7f\x85", "Heat"),  # C1 CSI, NUL, DEL, NEL
        ("Heat\tand\nDust", "Heat andDust"),
        ("Amélie (2001) 東京物語", "Amélie (2001) 東京物語"),  # ordinary text untouched
    ],
)
def test_printable_removes_escape_sequences_and_controls(text, shown):
    assert stored.printable(text) == shown
    assert not stored.has_controls(stored.printable(text))


def test_read_json_refuses_what_movierec_never_writes(tmp_path):
    path = tmp_path / "x.json"
    for body, message in [
        ("[" + "9" * 4400 + "]", "4,400 digits"),
        ("[NaN]", "NaN is not a number"),
        ("[-Infinity]", "-Infinity is not a number"),
        ("[1e400]", "overflows"),
        ("{", "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply|not valid JSON"),
    ]:
        path.write_text(body)
        with pytest.raises(stored.Invalid, match=message):
            stored.read_json(path, 1 << 20)
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(stored.Invalid, match="not UTF-8"):
        stored.read_json(path, 1 << 20)
    path.write_text('{"a": [1, 2.5, true, null, "x"]}')
    assert stored.read_json(path, 1 << 20) == {"a": [1, 2.5, True, None, "x"]}
    with pytest.raises(stored.Invalid, match="over 0 MiB"):
        stored.read_json(path, 10)


@dataclasses.dataclass(frozen=True)
class _Config:
    dim: int = 8
    sweeps: int = 3
    reg: float = 0.1
    gate: bool = True
    name: str = "x"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"dim": 50.5}, "cfg.dim must be a whole number, got 50.5"),
        ({"dim": 10**9}, "cfg.dim must be from 0 to 4096"),
        ({"sweeps": 10**7}, "cfg.sweeps must be from 0 to 1e\\+06"),
        ({"sweeps": True}, "cfg.sweeps must be a whole number, got true"),
        ({"reg": "fast"}, "cfg.reg must be a number, got 'fast'"),
        ({"gate": "no"}, "cfg.gate must be true or false, got 'no'"),
        ({"name": "x" * 200}, "cfg.name is 200 characters long"),
        ({"other": 1}, "unknown field"),
        ([1], "cfg must be an object"),
    ],
)
def test_a_config_value_of_the_wrong_kind_range_or_size_is_refused_by_name(fields, message):
    with pytest.raises(stored.Invalid, match=message):
        stored.config(_Config, fields, "cfg")


def test_a_config_of_right_kinds_is_built():
    assert stored.config(_Config, {"dim": 16, "reg": 1}, "cfg") == _Config(dim=16, reg=1)


@pytest.mark.parametrize("value", [[0.5, 1e308], [5, 1], [0.5], "0.5,5", [True, 5]])
def test_a_rating_scale_is_two_finite_numbers_in_order(value):
    with pytest.raises(stored.Invalid, match="rating_scale"):
        stored.scale(value)
