"""A filter for uvicorn's log: a stopped server says one line (the command's), not five.

A module of its own, light to import: each ``serve --workers`` process builds its log
from this name before it answers the supervisor's first health check.
"""

from __future__ import annotations

import logging


class QuietShutdown(logging.Filter):
    """Drops uvicorn's shutdown lines: a stopped server says one line (the command's), not five."""

    PREFIXES = (
        "Shutting down",
        "Waiting for application shutdown",
        "Application shutdown complete",
        "Finished server process",
        "Waiting for child process",
        "Stopping parent process",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.PREFIXES)
