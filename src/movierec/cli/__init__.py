"""The ``movierec`` command line: one module per group of commands, registered on one app.

``main`` is the entry point. It imports the commands (and through them PyTorch) only
while Ctrl-C is held back, so Ctrl-C at any moment, start-up included, ends with one
line and exit code 130, never a traceback or an abort.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

INTERRUPTED = "interrupted; nothing was written over any earlier result"
"""The line Ctrl-C ends a command with (``interrupted_line`` adds how to go on, where there is a way)."""
_checkpoints: list[str] = []


def resumable_from(checkpoint_dir: os.PathLike | str) -> None:
    """Note where this run keeps its checkpoint: Ctrl-C then says ``--resume`` if one was written."""
    _checkpoints[:] = [os.fspath(checkpoint_dir)]


def interrupted_line() -> str:
    """What Ctrl-C prints: advice to ``--resume`` only when a checkpoint to resume from is on disk."""
    if any(os.path.isfile(os.path.join(d, "checkpoint.json")) for d in _checkpoints):
        return f"{INTERRUPTED}; it continues from its last checkpoint with the same command plus --resume"
    return INTERRUPTED


STARTED: list[float | None] = [None]
"""When ``main`` began, before PyTorch loads (``time.perf_counter``; None when the app is run
otherwise): a run's wall time counts from here, as loading PyTorch takes seconds on a busy machine."""


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2; Ctrl-C exit code 130."""
    STARTED[0] = time.perf_counter()
    # Before PyTorch loads its OpenMP runtime: threads that wait by sleeping, not spinning, so
    # two threads on two busy cores do not fight (an mlp epoch on ml-latest-small took 20 s
    # with spinning threads beside another job, 0.6 s with passive ones). Yours wins if set.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Ctrl-C during start-up is noted, not raised: an exception thrown into PyTorch's import
    # (C++ calling back into Python) can abort the process ("terminate called after throwing").
    interrupted: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    try:
        import movierec.cli.register  # noqa: F401  (the commands, on the one app)
        from movierec.cli.common import run

        if _runs_a_command(sys.argv[1:]):
            # Commands import PyTorch when they run; loaded here, under the same guard, a Ctrl-C
            # during its import is noted too. Help, --version and completion never load it.
            import torch  # noqa: F401
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        if interrupted:
            raise KeyboardInterrupt
        run()
    except KeyboardInterrupt:
        print(interrupted_line(), file=sys.stderr)
        hard_exit(130)


def _runs_a_command(args: list[str]) -> bool:
    """Whether these arguments run a command (which loads PyTorch) rather than ask for help or the version."""
    asks = {"--help", "-h", "--version", "--show-completion", "--install-completion"}
    return bool(args) and not asks.intersection(args) and "_MOVIEREC_COMPLETE" not in os.environ


def hard_exit(code: int) -> None:
    """Exit with ``code`` after the usual clean-up, even where CPython would end the process by SIGINT.

    A Ctrl-C that lands inside an ``exec`` (dataclasses run one per class, so it happens
    while PyTorch imports) marks the interrupt as unhandled although it was caught, and
    CPython 3.11 then kills itself with SIGINT at exit (1 start-up in 10 measured: exit -2).
    """
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def __getattr__(name: str) -> Any:
    if name == "app":
        import movierec.cli.register  # noqa: F401
        from movierec.cli.common import app

        return app
    raise AttributeError(f"module 'movierec.cli' has no attribute {name!r}")


__all__ = ["app", "main"]
