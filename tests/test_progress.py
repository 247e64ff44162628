"""A fit's report and progress: a typed FitReport beside a frozen Recommender, one Progress for every phase."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
from helpers import run_cli

from movierec import fitting, pipeline
from movierec.progress import Progress
from movierec.report import FitReport


class Recorded(Progress):
    """Every call a fit makes on its progress, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def begin(self, label, total):
        self.calls.append(("begin", label, total))

    def advance(self, done, total=None):
        self.calls.append(("advance", done, total))

    def end(self, label, seconds, completed=True):
        self.calls.append(("end", label, seconds))

    def epoch(self, label, row, total):
        self.calls.append(("epoch", label, row.epoch, total))

    def note(self, line):
        self.calls.append(("note", line))


@pytest.fixture(scope="module")
def fitted(small):
    parts = pipeline.split(small.ratings, pipeline.SplitConfig(seed=2))
    progress = Recorded()
    recommender, report = fitting.fit(parts.fit, parts.val, "als", ranker="ease", progress=progress)
    return parts, recommender, report, progress


def test_the_report_is_typed_and_frozen_and_the_manifest_keeps_it(fitted):
    _, recommender, report, _ = fitted
    assert isinstance(report, FitReport) and report.history and report.lists_choice.startswith("lists: ease")
    assert set(report.seconds) >= {"rater", "lists", "ranker"} and all(s >= 0 for s in report.seconds.values())
    assert report.rater_seconds >= sum(h.seconds for h in report.history)
    assert recommender.info == report.as_info() and json.dumps(report.as_info())
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.rater_choice = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        recommender.lists = recommender.lists  # type: ignore[misc]


def test_a_variant_reuses_the_counts_and_a_new_history_derives_its_own(fitted):
    parts, recommender, _, _ = fitted
    variant = dataclasses.replace(recommender, lists=dataclasses.replace(recommender.lists, discount=0.0))
    assert variant.catalogue is recommender.catalogue and variant.item_counts is recommender.item_counts
    fit_only = dataclasses.replace(recommender, history=parts.fit.by_user())
    assert fit_only.catalogue is not recommender.catalogue
    assert fit_only.item_counts.sum() == len(parts.fit) < recommender.item_counts.sum()


def test_every_phase_is_reported_labelled_and_closed(fitted):
    _, _, report, progress = fitted
    begun = [c[1] for c in progress.calls if c[0] == "begin"]
    ended = [c[1] for c in progress.calls if c[0] == "end"]
    assert sorted(begun) == sorted(ended)  # every phase that starts ends
    assert any(label.startswith("als") for label in begun)  # the rater, by name
    assert any("list settings" in label for label in begun)  # the list settings tried, counted
    assert any("refit" in label for label in begun)
    epochs = [c for c in progress.calls if c[0] == "epoch"]
    # Each candidate setting's fit, by name and number: als compares a few here.
    assert len(epochs) >= len(report.history) and all(c[1].startswith("als") for c in epochs)
    assert report.rater_choice is None or any("settings 2 of" in c[1] for c in epochs)


def test_the_library_logs_its_progress_and_is_quiet_by_default(small, caplog):
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("movierec").handlers)
    parts = pipeline.split(small.ratings, pipeline.SplitConfig(seed=2))
    with caplog.at_level(logging.INFO, logger="movierec"):
        fitting.fit(parts.fit, parts.val, "baseline", ranker="popular")
    lines = [r.getMessage() for r in caplog.records if r.name == "movierec"]
    assert any(line.startswith("baseline") for line in lines) and any("list settings" in x for x in lines)


def test_train_reports_its_wall_time_and_each_phase(monkeypatch, capsys, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--model", "baseline", "--ranker", "popular", "--synthetic", "200x150x6000", "--out", str(out)]
    code, stdout, stderr = run_cli(monkeypatch, capsys, *args)
    assert code == 0, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    phases = metrics["phase_seconds"]
    assert {"split", "rater", "lists", "ranker", "test"} <= set(phases)
    assert sum(phases.values()) <= metrics["wall_seconds"] * 1.01
    assert "run s" in stdout and f"{metrics['wall_seconds']:.1f}" in stdout
    assert "baseline  epoch" in stderr  # the rater's history, by name


def test_quiet_shows_no_progress_and_verbose_each_phase_time(monkeypatch, capsys, tmp_path):
    args = ["train", "--model", "baseline", "--ranker", "popular", "--synthetic", "200x150x6000"]
    code, _, quiet = run_cli(monkeypatch, capsys, "-q", *args, "--out", str(tmp_path / "a"))
    assert code == 0 and "list settings" not in quiet and "epoch" not in quiet
    code, _, verbose = run_cli(monkeypatch, capsys, "-v", *args, "--out", str(tmp_path / "b"))
    assert code == 0 and "scoring the test part: " in verbose and " s\n" in verbose


def test_a_commands_clock_starts_when_the_command_does_not_after_pytorch_loads(monkeypatch):
    """The CLI's wall time counts from ``main``'s start: loading PyTorch takes seconds on a busy machine."""
    import time

    from movierec import cli
    from movierec.cli.display import Display

    monkeypatch.setattr(cli, "STARTED", [None])
    before = time.perf_counter()
    assert Display(quiet=True).started >= before  # run other than through main: from now
    monkeypatch.setattr(cli, "STARTED", [before - 10.0])
    assert Display(quiet=True).started == before - 10.0


def test_in_a_log_file_a_long_phase_says_it_still_runs(monkeypatch):
    """With no bar to draw (stderr not a terminal), a phase longer than HEARTBEAT gets a line meanwhile."""
    import time

    from movierec.cli import display

    monkeypatch.setattr(display, "HEARTBEAT", 0.2)
    shown: list[str] = []
    board = display.Display()
    monkeypatch.setattr(board, "_print", shown.append)
    with board, board.phase("scoring the test part"):
        time.sleep(1.5)
    still = [line for line in shown if line.startswith("scoring the test part:") and line.endswith("so far")]
    assert still, shown
