"""The README's tour runs as written, so what a newcomer reads stays true.

Each `movierec ...` line of the tour is run in a fresh folder, as the README gives it, with
two changes that keep the test to seconds: commands that train get small synthetic data
(300 users x 200 items x 6,000 ratings, 2 epochs) where the tour uses the default data, and
the real-data lines read the local copy of ml-latest-small instead of downloading it
(skipped when there is none) and train the `baseline` rater and the `popular` ranker.
`serve` is started, asked for /health and a list, and stopped.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ML_LATEST_SMALL as _BESIDE

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--synthetic", "300x200x6000"]
TIMEOUT = 600
# The local copy: beside the checkout (../shared/data, as conftest finds it), or where
# MOVIEREC_ML_LATEST_SMALL points.
ML_LATEST_SMALL = Path(os.environ.get("MOVIEREC_ML_LATEST_SMALL", _BESIDE))


def tour_commands() -> list[list[str]]:
    """Every `movierec` line of the README's tour section, comments removed, as argv lists."""
    readme = (ROOT / "README.md").read_text()
    tour = readme[readme.index("## A tour") :]
    tour = tour[: tour.index("\n## ", 1)]
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", tour, re.DOTALL):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("movierec "):
                lines.append(shlex.split(line)[1:])
    return lines


def adapt(argv: list[str]) -> list[str] | None:
    """The command as this test runs it, or None where it needs real data that is not here."""
    argv = list(argv)
    if "--dataset" in argv:
        if not (ML_LATEST_SMALL / "ratings.csv").exists():
            return None
        at = argv.index("--dataset")
        assert argv[at + 1] == "ml-latest-small", "the tour downloads only ml-latest-small"
        argv[at : at + 2] = ["--data", str(ML_LATEST_SMALL)]
        if argv[0] == "train" and "--model" not in argv:
            # The default blend and EASE's settings search take minutes on two busy cores.
            argv += ["--model", "baseline", "--ranker", "popular"]
    elif argv[0] == "train" and "--data" not in argv:
        argv += [*SMALL, "--epochs", "2"]
    elif argv[0] == "compare" and "--data" not in argv:
        argv += SMALL
    return argv


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "movierec", *argv], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT
    )


def serve_briefly(argv: list[str], cwd: Path) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "movierec", *argv, "--port", str(port)],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    health = json.load(r)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"serve did not answer: {proc.stderr.read() if proc.stderr else ''}") from None
                time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/users/1/recommendations?k=3", timeout=30) as r:
            return {"health": health, "list": json.load(r)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_tour_names_the_commands_a_newcomer_needs():
    commands = [argv[0] for argv in tour_commands()]
    for needed in ("models", "train", "recommend", "serve", "evaluate", "compare"):
        assert needed in commands
    readme = (ROOT / "README.md").read_text()
    assert "--rate 1=5 --rate 4886=5" in readme and "Toy Story" in readme and "Monsters, Inc." in readme


@pytest.mark.slow
def test_every_tour_command_runs(tmp_path):
    ran, skipped = [], []
    for argv in tour_commands():
        adapted = adapt(argv)
        # Without the real data, the model trained on it is missing too: its commands go with it.
        needs_missing = "--model" in argv and any(
            argv[argv.index("--model") + 1] == s[s.index("--out") + 1] for s in skipped if "--out" in s
        )
        if adapted is None or needs_missing:
            skipped.append(argv)
            continue
        if adapted[0] == "serve":
            answers = serve_briefly(adapted, tmp_path)
            assert answers["health"]["status"] == "ok", answers
            assert len(answers["list"]["items"]) == 3, answers
        else:
            done = run(adapted, tmp_path)
            assert done.returncode == 0, f"movierec {' '.join(adapted)}\n{done.stderr[-3000:]}"
            assert done.stdout.strip(), f"movierec {' '.join(adapted)} printed nothing"
        ran.append(adapted)
    assert ran, "no tour command ran"
    assert (tmp_path / "runs" / "demo" / "manifest.json").exists()
    if skipped:
        pytest.skip(f"ran {len(ran)} tour commands; {len(skipped)} need {ML_LATEST_SMALL}")


def test_the_new_user_of_the_tour_is_toy_story_and_monsters_inc():
    if not (ML_LATEST_SMALL / "movies.csv").exists():
        pytest.skip(f"real data not present at {ML_LATEST_SMALL}")
    with open(ML_LATEST_SMALL / "movies.csv", newline="", encoding="utf-8") as f:
        titles = {row["movieId"]: row["title"] for row in csv.DictReader(f)}
    assert (titles["1"], titles["4886"]) == ("Toy Story (1995)", "Monsters, Inc. (2001)")


def test_the_real_data_lines_are_skipped_without_the_data(monkeypatch, tmp_path):
    monkeypatch.setattr(sys.modules[__name__], "ML_LATEST_SMALL", tmp_path / "absent")
    assert adapt(["train", "--dataset", "ml-latest-small", "--out", "runs/small"]) is None
    assert adapt(["train", "--out", "runs/demo"]) == ["train", "--out", "runs/demo", *SMALL, "--epochs", "2"]
