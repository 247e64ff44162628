"""What a long job reports while it works: one object handed down from where the job starts.

Every step of ``train``, ``compare``, ``tune``, ``evaluate`` and ``recommend --all-users``
that can take seconds reports through a ``Progress``: a timed phase with a label (which
model or blend member, which list setting), its count where the work is countable, each
fit's history rows, and one-line notes of what was chosen. The library's ``Progress``
sends them to the ``movierec`` logger, which is silent unless the application configures
logging; the command line draws them with Rich (``movierec.cli.display``). Each phase's
wall time is kept by key in ``seconds``: the per-phase breakdown of a run's metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from movierec.training import Epoch

log = logging.getLogger("movierec")
# A library stays quiet unless the application asks: without a handler of its own, Python would
# print the logger's warnings on stderr.
log.addHandler(logging.NullHandler())


def epoch_line(label: str, row: Epoch, total: int) -> str:
    """One history row as a line: the sweep, train MSE, validation MSE and RMSE (or NDCG@10), seconds."""
    # The plot shows both as MSE, as the notebook did; validation also as RMSE, the test's unit.
    val = "-" if row.val_rmse is None else f"{row.val_rmse**2:.4f} (RMSE {row.val_rmse:.4f})"
    loss = "-" if row.train_loss is None else f"{row.train_loss:.4f}"
    line = f"{label}  epoch {row.epoch:>3}/{total}  train MSE {loss}  val MSE {val}"
    if row.val_ndcg is not None:
        line = f"{label}  sweep {row.epoch:>3}/{total}  val NDCG@10 {row.val_ndcg:.4f}"
    return f"{line}  {row.seconds:.1f} s"


class Progress:
    """Receives a job's steps; this one logs them (INFO for phases and notes, DEBUG for counts).

    Subclasses (the CLI's) draw them instead; ``phase`` is the one entry a job uses for a
    step, so the timing in ``seconds`` is the same whoever renders it.
    """

    def __init__(self) -> None:
        self.started = time.perf_counter()
        """When the job began (one ``Progress`` per job): a run's wall time counts from here."""
        self.seconds: dict[str, float] = {}
        """Wall seconds of each keyed phase, summed over its repeats."""

    @contextmanager
    def phase(self, label: str, total: int | None = None, key: str | None = None) -> Iterator[Phase]:
        """A step of the job named ``label``, of ``total`` counted parts where countable.

        With ``key``, its wall time is added to ``seconds[key]``.
        """
        started = time.perf_counter()
        self.begin(label, total)
        completed = False
        try:
            yield Phase(self)
            completed = True
        finally:
            took = time.perf_counter() - started
            if key is not None:
                self.seconds[key] = self.seconds.get(key, 0.0) + took
            self.end(label, took, completed)

    def begin(self, label: str, total: int | None) -> None:
        """A phase starts."""
        log.info("%s%s", label, "" if total is None else f" (0/{total})")

    def advance(self, done: float, total: int | None = None) -> None:
        """The innermost phase has done ``done`` of its parts (``total`` when it was not known at its start)."""
        log.debug("%g/%s done", done, "?" if total is None else total)

    def end(self, label: str, seconds: float, completed: bool = True) -> None:
        """A phase ends, after ``seconds``; not ``completed`` when an error (or Ctrl-C) cut it short."""
        log.debug("%s: %.1f s%s", label, seconds, "" if completed else " (stopped)")

    def epoch(self, label: str, row: Epoch, total: int) -> None:
        """One row of a fit's history: ``label`` names the model (or blend member)."""
        log.info(epoch_line(label, row, total))

    def note(self, line: str) -> None:
        """A line worth showing on its own: what was chosen, and why."""
        log.info(line)


class Phase:
    """An open phase, as the work inside it sees it: where to count its parts and send its history."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def advance(self, done: float, total: int | None = None) -> None:
        """``done`` of the phase's parts are done (a fraction: part of the way through one)."""
        self.progress.advance(done, total)

    def sweeps(self, label: str, total: int, rows: bool = True) -> Callable[[Epoch], None]:
        """What a fit calls after each sweep: its history row shown (unless not ``rows``), the phase advanced."""

        def on_epoch(row: Epoch) -> None:
            if rows:
                self.progress.epoch(label, row, total)
            self.progress.advance(row.epoch, total)

        return on_epoch


class Relay(Progress):
    """A ``Progress`` that passes everything on to ``outer``: subclass it to also act on some of it."""

    def __init__(self, outer: Progress) -> None:
        super().__init__()
        self.outer = outer

    def begin(self, label: str, total: int | None) -> None:
        self.outer.begin(label, total)

    def advance(self, done: float, total: int | None = None) -> None:
        self.outer.advance(done, total)

    def end(self, label: str, seconds: float, completed: bool = True) -> None:
        self.outer.end(label, seconds, completed)

    def epoch(self, label: str, row: Epoch, total: int) -> None:
        self.outer.epoch(label, row, total)

    def note(self, line: str) -> None:
        self.outer.note(line)
