"""What the command line shows before any work: start-up without PyTorch, --version,
completion; and how it shows results: tables whole in a file, ids found by title,
explanations by title."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_cli, run_main

from movierec._version import __version__
from movierec.cli.common import UNLIMITED_WIDTH, output_width

TITLES = [
    "Matrix, The (1999)",
    "Matrix Reloaded, The (2003)",
    "Toy Story (1995)",
    "Monsters, Inc. (2001)",
    "Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb (1964)",
    *(f"Film number {i} ({1950 + i})" for i in range(25)),
]
"""A small catalogue in MovieLens's form: ids 10, 20, ...; a title with a moved article; a long one."""


def _write_movielens(folder: Path, with_titles: bool = True) -> Path:
    """80 users rating 12 of the 30 films each, at random (seeded), as ratings.csv (and movies.csv)."""
    rng = random.Random(0)
    folder.mkdir(parents=True)
    if with_titles:
        rows = [f'{10 * n},"{title}",Drama' for n, title in enumerate(TITLES, 1)]
        (folder / "movies.csv").write_text("movieId,title,genres\n" + "\n".join(rows) + "\n")
    lines = ["userId,movieId,rating,timestamp"]
    for user in range(1, 81):
        for n in rng.sample(range(1, len(TITLES) + 1), 12):
            lines.append(f"{user},{10 * n},{rng.choice([1, 2, 3, 3.5, 4, 4.5, 5])},{900_000_000 + user * 1000 + n}")
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n")
    return folder


def _train(data: Path, out: Path, ranker: str) -> Path:
    argv = ["movierec", "train", "--data", str(data), "--model", "baseline", "--ranker", ranker, "--out", str(out)]
    run_main([*argv, "--json"])
    return out


@pytest.fixture(scope="module")
def titled(tmp_path_factory) -> Path:
    """A model with titles, whose lists explain themselves (EASE)."""
    root = tmp_path_factory.mktemp("titled")
    return _train(_write_movielens(root / "data"), root / "model", "ease")


# ---------------------------------------------------------------- start-up

PROBE = """
import sys
from movierec.cli import main
sys.argv = ["movierec", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
loaded = sorted(m for m in ("torch", "numpy", "pandas", "fastapi", "matplotlib") if m in sys.modules)
print("loaded:", loaded, file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["train", "--help"], ["recommend", "--help"]])
def test_help_and_version_load_no_pytorch_nor_numpy(args):
    """The commands' modules import their heavy libraries when a command runs, so help starts at once."""
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120)
    assert "loaded: []" in result.stderr, result.stderr
    assert result.stdout.strip()


def test_importing_the_app_loads_no_pytorch():
    code = "import sys; from movierec.cli import app; assert app.registered_commands; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_version(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "--version")
    assert code == 0 and out == f"movierec {__version__}\n"


def test_shell_completion_is_offered_and_completes_commands():
    env = {**os.environ, "_MOVIEREC_COMPLETE": "complete_bash", "COMP_WORDS": "movierec sea", "COMP_CWORD": "1"}
    as_installed = "import sys; sys.argv[0] = 'movierec'; from movierec.cli import main; main()"  # the script's name
    result = subprocess.run([sys.executable, "-c", as_installed], env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["search"], result.stderr
    # The script --show-completion prints for bash (named here: it guesses the shell from the
    # parent processes, and a test run may have none).
    source = {**os.environ, "_MOVIEREC_COMPLETE": "source_bash"}
    shown = subprocess.run([sys.executable, "-c", as_installed], env=source, capture_output=True, text=True, timeout=99)
    assert shown.returncode == 0 and "complete -o default -F _movierec_completion movierec" in shown.stdout


def test_the_cli_restates_the_longest_list_it_allows():
    from movierec.cli.common import MAX_K
    from movierec.recommend.lists import MAX_K as LIST_MAX_K

    assert MAX_K == LIST_MAX_K


# ---------------------------------------------------------------- tables whole


@pytest.mark.parametrize(
    ("is_terminal", "columns", "width"),
    [
        (False, None, UNLIMITED_WIDTH),  # a file or a pipe: as wide as the table
        (True, None, None),  # a terminal: Rich asks it
        (False, "120", 120),
        (True, "70", 70),
        (False, "wide", UNLIMITED_WIDTH),
        (True, "0", None),
    ],
)
def test_tables_take_columns_else_the_terminal_else_no_limit(is_terminal, columns, width):
    assert output_width(is_terminal, columns) == width


def _recommend_piped(model: Path, columns: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns:
        env["COLUMNS"] = columns
    cmd = [sys.executable, "-m", "movierec", "recommend", "--model", str(model), "--user", "3", "-k", "8"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_tables_written_to_a_pipe_are_never_cut(titled):
    shown = _recommend_piped(titled, None)
    listed = json.loads(_recommend_json(titled))["items"]
    assert "…" not in shown
    for row in listed:  # every title whole, on one line
        assert any(row["title"] in line for line in shown.splitlines()), row["title"]
    narrow = _recommend_piped(titled, "60")  # COLUMNS, where given, is the width
    assert max(map(len, narrow.splitlines())) <= 60 < max(map(len, shown.splitlines()))


def _recommend_json(model: Path) -> str:
    cmd = [sys.executable, "-m", "movierec", "recommend", "--model", str(model), "--user", "3", "-k", "8", "--json"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


# ---------------------------------------------------------------- titles


def test_because_names_the_rated_films_by_title(titled, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "recommend", "--model", str(titled), "--user", "3", "-k", "8", "--json")
    rows = json.loads(out)["items"]
    explained = [row for row in rows if row["because"]]
    assert explained, "EASE explains its lists"
    code, shown, _ = run_cli(monkeypatch, capsys, "recommend", "--model", str(titled), "--user", "3", "-k", "8")
    assert code == 0
    lines = shown.splitlines()
    for row in explained:
        because = "; ".join(TITLES[int(item) // 10 - 1] for item in row["because"])
        assert any(row["title"] in line and because in line for line in lines), (because, shown)


def test_search_finds_ids_by_title(titled, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "search", "the matrix", "--model", str(titled), "--json")
    assert code == 0
    found = json.loads(out)["items"]
    assert found[0] == {"item_id": 10, "title": "Matrix, The (1999)", "n_ratings": found[0]["n_ratings"]}
    assert [row["title"] for row in found] == ["Matrix, The (1999)", "Matrix Reloaded, The (2003)"]
    code, shown, _ = run_cli(monkeypatch, capsys, "search", "STRANGELOVE", "--model", str(titled))
    assert code == 0 and TITLES[4] in shown and " 50 " in shown
    code, out, err = run_cli(monkeypatch, capsys, "search", "no such film", "--model", str(titled))
    assert code == 1 and out == "" and "no title contains 'no such film'" in err
    code, out, _ = run_cli(monkeypatch, capsys, "search", "no such film", "--model", str(titled), "--json")
    assert code == 0 and json.loads(out)["items"] == []


def test_search_says_when_a_model_has_no_titles(tmp_path, monkeypatch, capsys):
    model = _train(_write_movielens(tmp_path / "data", with_titles=False), tmp_path / "m", "popular")
    code, out, err = run_cli(monkeypatch, capsys, "search", "matrix", "--model", str(model))
    assert code == 2 and "without titles" in err and len(err.strip().splitlines()) == 1


def test_an_unknown_rated_item_points_to_search(titled, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "recommend", "--model", str(titled), "--rate", "99999=5")
    assert code == 2 and f"movierec search --model {titled} TITLE" in err


def test_a_title_given_as_an_item_id_is_answered_with_the_ids_it_may_mean(titled, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "similar", "--model", str(titled), "--item", "The Matrix")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "unknown item id 'The Matrix'" in err and "10 (Matrix, The (1999))" in err
    code, _, err = run_cli(monkeypatch, capsys, "similar", "--model", str(titled), "--item", "no such film")
    assert code == 2 and f"movierec search --model {titled} TITLE" in err
