"""Importing this module registers every command on ``movierec.cli.common.app``."""

from movierec.cli import (
    commands,  # noqa: F401
    compare,  # noqa: F401
    display,  # noqa: F401  (-v / -q)
    lists,  # noqa: F401
    serve,  # noqa: F401
    tune,  # noqa: F401
)
