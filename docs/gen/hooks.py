"""MkDocs hooks: the pages whose content is generated at build time, offline.

A page marks where generated text goes with an HTML comment on a line of its own:
``<!-- bench: SECTION -->`` (a table from bench/report.py, read from bench/results/*.json),
``<!-- bench: headline -->`` (the README's table) and ``<!-- cli -->`` (the ``--help`` of
every command of the Typer app, in the order the app lists them).
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MARK = re.compile(r"^<!-- (bench: (\w+)|cli) -->$", re.MULTILINE)


def _report() -> Any:
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "bench" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cli_reference() -> str:
    """Each command's ``--help`` as the terminal shows it, 100 columns wide, without colour."""
    import typer
    from typer.testing import CliRunner

    import movierec.cli.register  # noqa: F401  (registers the commands)
    from movierec.cli.common import app

    group = typer.main.get_command(app)
    runner = CliRunner()
    env = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    parts = []
    for name in [None, *group.list_commands(None)]:  # type: ignore[attr-defined, arg-type]
        args = ["--help"] if name is None else [name, "--help"]
        result = runner.invoke(app, args, env=env, terminal_width=100, prog_name="movierec")
        if result.exit_code != 0:
            raise RuntimeError(f"movierec {' '.join(args)} exited {result.exit_code}: {result.output}")
        title = "movierec" if name is None else f"movierec {name}"
        text = "\n".join(line.rstrip() for line in result.output.splitlines()).strip("\n")
        parts.append(f"## `{title}`\n\n```text\n{text}\n```")
    return "\n\n".join(parts)


def render(markdown: str) -> str:
    """Replace every marker in ``markdown`` with its generated text."""
    if not MARK.search(markdown):
        return markdown
    report = _report()

    def fill(match: re.Match[str]) -> str:
        if match.group(1) == "cli":
            return cli_reference()
        section = match.group(2)
        return report.headline() if section == "headline" else report.SECTIONS[section]()

    return MARK.sub(fill, markdown)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return render(markdown)
