"""Importing this module registers every command on ``movierec.cli.common.app``."""

from movierec.cli import (
    commands,  # noqa: F401
    compare,  # noqa: F401
    lists,  # noqa: F401
    serve,  # noqa: F401
    tune,  # noqa: F401
)
