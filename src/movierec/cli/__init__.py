"""The ``movierec`` command line: one module per group of commands, registered on one app."""

from movierec.cli import commands  # noqa: F401  (registers its commands)
from movierec.cli import serve as _serve  # noqa: F401  (registers `serve`)
from movierec.cli import tune as _tune  # noqa: F401  (registers `tune`)
from movierec.cli.app import app, main

__all__ = ["app", "main"]
