"""The ``movierec`` Typer app and what its commands share: options, data loading, display.

User errors (bad data, bad flags, a missing model) print one clear line on stderr and
exit with code 2; ``--json`` prints one JSON object on stdout for scripts.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from movierec.errors import ConfigError, MovierecError

if TYPE_CHECKING:
    from movierec.data.ratings import Ratings

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Train, evaluate and serve rating-based recommenders.",
)


def print_version(value: bool) -> None:
    """``--version``: print it and exit before any command runs."""
    if value:
        from movierec._version import __version__

        print(f"movierec {__version__}")
        raise typer.Exit()


UNLIMITED_WIDTH = 100_000
"""Width of tables written to a file or a pipe: wide enough that no column is ever cut."""


def output_width(is_terminal: bool, columns: str | None) -> int | None:
    """The width tables are drawn to: ``COLUMNS`` where set, else the terminal's (None: Rich asks it), else unlimited.

    A table cut to 80 columns in a log ("baseli...") is lost for good; a wide one in a file
    is only wide.
    """
    if columns and columns.strip().isdigit() and int(columns) > 0:
        return int(columns)
    return None if is_terminal else UNLIMITED_WIDTH


# No markup: ids, titles and paths are the user's text, and "[/x]" in one is no style tag.
err = Console(stderr=True, soft_wrap=True, markup=False)  # an error is one line, however narrow the terminal
out = Console(markup=False, width=output_width(sys.stdout.isatty(), os.environ.get("COLUMNS")))


def error_line(message: object) -> Text:
    """``error: <message>``, the label in red, the message as it is."""
    return Text.assemble(("error:", "red"), " ", str(message))


DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        help="A MovieLens release (ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m, ml-latest, ml-latest-small), "
        "downloaded once into the cache; or 'synthetic' (the default when no data is named).",
    ),
]
DataOpt = Annotated[
    Path | None, typer.Option("--data", help="A MovieLens zip or folder, or a ratings CSV/TSV/Parquet file.")
]
TestOpt = Annotated[
    Path | None,
    typer.Option("--test", help="Evaluate on this ratings file instead of splitting (e.g. ml-100k u1.test)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of tables.")]
SplitOpt = Annotated[str, typer.Option(help="random, user (per-user hold-out) or time (latest ratings).")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
SyntheticOpt = Annotated[str | None, typer.Option(help="Size of synthetic data as USERSxITEMSxRATINGS.")]
# How to read a ratings file whose columns are not MovieLens's (see parse_columns).
UserColOpt = Annotated[str | None, typer.Option(help="User id column of a ratings file.")]
ItemColOpt = Annotated[str | None, typer.Option(help="Item id column of a ratings file.")]
RatingColOpt = Annotated[str | None, typer.Option(help="Rating column of a ratings file.")]
TimeColOpt = Annotated[str | None, typer.Option(help="Timestamp column of a ratings file.")]
RatingRangeOpt = Annotated[str | None, typer.Option(help="Allowed ratings LO,HI for a ratings file.")]


@dataclass(frozen=True)
class FileFlags:
    """Column names and rating range for ratings files that are not MovieLens releases."""

    user_col: str | None
    item_col: str | None
    rating_col: str | None
    time_col: str | None
    rating_range: tuple[float, float] | None


MAX_K = 1000
"""The longest list, as ``movierec.recommend.lists.MAX_K`` (and the server) allow: restated here so that
``--help`` needs no NumPy; a test keeps the two equal."""


def check_k(k: int) -> None:
    """A list length from the command line: 1 .. MAX_K, as the server allows."""
    if not 1 <= k <= MAX_K:
        raise ConfigError(f"-k must be between 1 and {MAX_K}, got {k}")


def parse_columns(user_col, item_col, rating_col, time_col, rating_range) -> FileFlags:
    rng = None
    if rating_range:
        try:
            lo, hi = (float(x) for x in rating_range.split(","))
        except ValueError:
            raise ConfigError(f"--rating-range takes LO,HI (for example 1,10), got {rating_range!r}") from None
        rng = (lo, hi)
    return FileFlags(user_col, item_col, rating_col, time_col, rng)


def synthetic_config(spec: str | None, seed: int):
    from movierec.data.synthetic import SyntheticConfig

    if not spec:
        return SyntheticConfig(seed=seed)
    try:
        n_users, n_items, n_ratings = (int(x) for x in spec.lower().split("x"))
    except ValueError:
        raise ConfigError(
            f"--synthetic takes USERSxITEMSxRATINGS (for example 2000x1500x200000), got {spec!r}"
        ) from None
    return SyntheticConfig(n_users=n_users, n_items=n_items, n_ratings=n_ratings, seed=seed)


def load_ratings(
    dataset: str | None, data: Path | None, columns: FileFlags, synthetic: str | None, seed: int, progress: bool
) -> tuple[Ratings, object | None]:
    """The ratings a command works on, and the synthetic generator's record when synthetic."""
    if dataset and data:
        raise ConfigError("give --dataset or --data, not both")
    if data is None and dataset in (None, "synthetic"):
        from movierec.data.synthetic import generate

        syn = generate(synthetic_config(synthetic, seed))
        use_threads(len(syn.ratings))
        return syn.ratings, syn
    from movierec.data.load import load

    ratings = load(
        data,
        dataset=dataset,
        user_col=columns.user_col,
        item_col=columns.item_col,
        rating_col=columns.rating_col,
        time_col=columns.time_col,
        rating_range=columns.rating_range,
        progress=progress,
    )
    use_threads(len(ratings))
    return ratings, None


def load_test(test: Path, columns: FileFlags) -> Ratings:
    from movierec.data.load import load

    return load(
        test,
        user_col=columns.user_col,
        item_col=columns.item_col,
        rating_col=columns.rating_col,
        time_col=columns.time_col,
        rating_range=columns.rating_range,
    )


THREADS_ENV = "MOVIEREC_THREADS"
"""Set to a number to fix PyTorch's threads for every command (``serve`` has its own ``--threads``)."""
SMALL_LOG = 1_000_000
"""Logs with fewer ratings train on one thread: each step is too small to split, and one thread never fights."""


def use_threads(n_ratings: int) -> int:
    """Choose PyTorch's threads by the size of the work (``MOVIEREC_THREADS`` overrides); returns the number.

    A small log trains in seconds on one thread, and one thread cannot fight another job
    for two busy cores (mf on ml-latest-small: 0.3 s an epoch on one thread beside another
    job, 7-14 s on two); a large one gains from every core.
    """
    import torch

    raw = os.environ.get(THREADS_ENV)
    if raw:
        try:
            n = int(raw)
        except ValueError:
            raise ConfigError(f"{THREADS_ENV}={raw!r} is not a number of threads; unset it or give e.g. 2") from None
        if n < 1:
            raise ConfigError(f"{THREADS_ENV} must be at least 1, got {n}")
    else:
        # Under torchrun, the ranks on one machine share its cores.
        ranks_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
        n = 1 if n_ratings < SMALL_LOG else max(1, len(os.sched_getaffinity(0)) // max(ranks_here, 1))
    torch.set_num_threads(n)
    return n


def run() -> None:
    """Run the app: user errors become one line on stderr and exit code 2, Ctrl-C exit code 130."""
    from movierec.cli import INTERRUPTED, hard_exit

    try:
        # standalone_mode=False: Typer hands Ctrl-C back as exit code 130 (it would exit
        # silently) and usage errors as exceptions, so the message here is the one shown.
        code = app(standalone_mode=False)
    except MovierecError as exc:
        err.print(error_line(exc), highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        code = 130
    except PermissionError as exc:  # a file inside a folder given, or one written to: named by the OS
        err.print(error_line(f"{exc.filename}: permission denied; make it readable, or name another"), highlight=False)
        sys.exit(2)
    except typer.TyperException as exc:  # a bad flag: Typer's own message and exit code (2)
        _show_usage_error(exc)
        sys.exit(getattr(exc, "exit_code", 2))
    if code == 130:
        err.print(INTERRUPTED, highlight=False)
        hard_exit(130)  # not sys.exit: see cli.hard_exit
    sys.exit(code if isinstance(code, int) else 0)


def _show_usage_error(exc: Exception) -> None:
    try:
        from typer import rich_utils

        rich_utils.rich_format_error(exc)  # type: ignore[arg-type]
    except (ImportError, AttributeError):
        exc.show()  # type: ignore[attr-defined]
