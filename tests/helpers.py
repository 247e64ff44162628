"""Helpers shared by test modules (pytest puts tests/ on sys.path)."""

from __future__ import annotations

import sys

from movierec.cli import main


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; returns exit code, stdout and stderr."""
    monkeypatch.setattr(sys, "argv", ["movierec", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_main(argv: list[str]) -> None:
    """Run the CLI in-process outside a test's own monkeypatch (module fixtures); fails on a non-zero exit."""
    import pytest

    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", argv)
    try:
        main()
    except SystemExit as exc:
        assert not exc.code
    finally:
        mp.undo()
