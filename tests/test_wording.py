"""The repository speaks of the software: what it does, what it measured, on which machine and date.

Words about how the work on it was organised mean nothing to a user, so a test keeps them out
of every tracked (and every new, not ignored) file: README, docs, bench/, code and tests.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Spaces written as [ ], so that this line, which the pattern scans too, does not match itself.
PATTERN = (
    r"(this|that|earlier|later|last|next|first|second|third|morning|evening|night)[ ]session"
    r"|sessions?[ ][0-9]|the[ ]issue|issues?[ ][0-9]|was[ ]lent|been[ ]lent"
)


def _git_grep() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    found = subprocess.run(
        ["git", "grep", "--untracked", "-n", "-I", "-i", "-E", PATTERN],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode in (0, 1), found.stderr  # 1: no line matched
    return found.stdout.splitlines()


def test_no_file_speaks_of_how_the_work_was_organised():
    hits = _git_grep()
    assert not hits, "say what the software does or measured instead:\n" + "\n".join(hits[:40])


def test_the_pattern_finds_what_it_is_meant_to_find():
    pattern = re.compile(PATTERN, re.IGNORECASE)
    # Joined at run time, so that these lines do not match the pattern themselves.
    for words in (
        ("measured in the last", "session"),
        ("Sessions", "2 and 3"),
        ("as the", "issue asks"),
        ("no GPU was", "lent"),
    ):
        assert pattern.search(" ".join(words)), words
    for line in ("a sitting of ratings", "scope='session'", "issued a token", "a session cookie"):
        assert not pattern.search(line), line
