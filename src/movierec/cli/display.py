"""How the command line shows a job's progress: Rich bars and lines on stderr, and ``-v`` / ``-q``.

A job reports through a ``movierec.progress.Progress``; the CLI's is a ``Display``, which
draws each open phase as a bar (its label, count, elapsed time and, where the work is
countable, the time left) and prints each fit's history rows and each note as a line.
The library's own logging (the ``movierec`` logger) is shown at INFO, at DEBUG with
``-v``, and warnings only with ``-q``, which also hides the bars and lines.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from movierec.cli.common import app, err, print_version
from movierec.progress import Progress as JobProgress
from movierec.progress import epoch_line

if TYPE_CHECKING:
    from movierec.training import Epoch

LOGGED_PHASE = 1.0
"""Seconds a phase must take for its line when stderr is not a terminal (where no bar is drawn)."""
HEARTBEAT = 4.0
"""With no bar to draw, the longest a phase goes on before a line says it still runs (seconds)."""
LEVEL = [logging.INFO]
"""The level the command line shows (``-v``: DEBUG, ``-q``: WARNING); set once per run by ``verbosity``."""


@app.callback()
def verbosity(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show more: each phase's time, debug logs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Show warnings and results only, no progress.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", help="Print movierec's version and exit.", callback=print_version, is_eager=True),
    ] = False,
) -> None:
    """Train, evaluate and serve rating-based recommenders."""
    LEVEL[0] = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logger = logging.getLogger("movierec")
    logger.setLevel(LEVEL[0])
    if not any(isinstance(h, _Lines) for h in logger.handlers):
        logger.addHandler(_Lines(err))


class _Lines(logging.Handler):
    """The library's log records as plain lines on stderr."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        self.console.print(self.format(record), highlight=False)


class Display(JobProgress):
    """A job's progress drawn on stderr: a bar per open phase, a line per history row and note."""

    def __init__(self, quiet: bool = False) -> None:
        from movierec.cli import STARTED

        super().__init__(STARTED[0])  # the command's start, PyTorch's loading included
        self.quiet = quiet or LEVEL[0] > logging.INFO
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=self.quiet,
        )
        self.tasks: list[TaskID] = []
        self.open: list[tuple[str, float]] = []  # each open phase's label and start, innermost last
        self.last_line = time.perf_counter()
        self.stop = threading.Event()
        self.beat: threading.Thread | None = None

    def __enter__(self) -> Display:
        self.bar.__enter__()
        if not self.quiet and not self.bar.console.is_terminal:
            self.beat = threading.Thread(target=self._heartbeat, daemon=True)
            self.beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.beat is not None:
            self.beat.join()
        self.bar.__exit__(*exc)  # type: ignore[arg-type]

    def _heartbeat(self) -> None:
        """In a log file, where no bar ticks: a line for a phase that has gone on ``HEARTBEAT`` s without one."""
        while not self.stop.wait(0.5):
            now = time.perf_counter()
            if self.open and now - self.last_line >= HEARTBEAT:
                label, started = self.open[-1]
                self._print(f"{label}: {now - started:.0f} s so far")

    def begin(self, label: str, total: int | None) -> None:
        self.tasks.append(self.bar.add_task(label, total=total))
        self.open.append((label, time.perf_counter()))

    def advance(self, done: float, total: int | None = None) -> None:
        if self.tasks:
            self.bar.update(self.tasks[-1], completed=done, total=total)  # total None: as it was

    def end(self, label: str, seconds: float, completed: bool = True) -> None:
        if self.tasks:
            self.bar.remove_task(self.tasks.pop())
        if self.open:
            self.open.pop()
        # With no bar to draw (a log file), each phase of a second or more gets a line as it ends;
        # one cut short by an error gets none: the error's own line says what happened.
        shown = LEVEL[0] <= logging.DEBUG or (seconds >= LOGGED_PHASE and not self.bar.console.is_terminal)
        if shown and completed:
            self._print(f"{label}: {seconds:.1f} s")

    def epoch(self, label: str, row: Epoch, total: int) -> None:
        self._print(epoch_line(label, row, total))

    def note(self, line: str) -> None:
        self._print(line)

    def _print(self, line: str) -> None:
        if not self.quiet:
            self.bar.console.print(line, highlight=False)
            self.last_line = time.perf_counter()
