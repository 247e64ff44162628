"""The documentation: every page in the nav, every public name in the API reference, and
benchmark figures that come from bench/results/ rather than from someone's typing."""

from __future__ import annotations

import importlib.util
import json
import re
import statistics
import sys
from pathlib import Path

import pytest

import movierec

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _nav_pages() -> set[str]:
    config = (ROOT / "mkdocs.yml").read_text()
    nav = config[config.index("\nnav:") :]
    return set(re.findall(r":\s*([\w/.-]+\.md)\s*$", nav, re.MULTILINE))


def test_every_page_is_reachable_from_the_nav():
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    nav = _nav_pages()
    assert pages - nav == set(), "pages missing from mkdocs.yml's nav"
    assert nav - pages == set(), "nav entries without a page"


def test_the_api_reference_covers_every_public_name():
    text = (DOCS / "reference" / "api.md").read_text()
    documented = set(re.findall(r"^::: movierec\.(\w+)\s*$", text, re.MULTILINE))
    assert set(movierec.__all__) - documented == set()
    assert documented - set(movierec.__all__) == set(), "the reference names something movierec does not export"


def test_the_readme_is_short_and_its_links_lead_somewhere():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 160
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme)
    assert links, "the README links into the docs"
    assert [link for link in links if not (ROOT / link).exists()] == []
    for command in (
        "./setup.sh && .venv/bin/movierec train --model mlp --out runs/mlp",
        "./setup.sh && .venv/bin/pytest",
    ):
        assert command in readme


@pytest.fixture(scope="module")
def report():
    return _module(ROOT / "bench" / "report.py", "bench_report")


def test_the_readme_table_is_the_one_bench_report_makes(report):
    assert report.headline() in (ROOT / "README.md").read_text()


def test_the_headline_figures_are_the_means_of_the_result_files(report):
    results = ROOT / "bench" / "results"
    ours = [
        json.loads((results / "ranking-ml-latest-small.json").read_text())["seeds"][str(s)]["ease d0.2 + blend"]["ndcg"]
        for s in (0, 1, 2)
    ]
    peer = [
        next(
            r["test"]["ndcg"]
            for r in json.loads((results / f"ranking-peers-ml-latest-small-seed{s}.json").read_text())["results"]
            if r["peer"] == "cornac EASE"
        )
        for s in (0, 1, 2)
    ]
    table = report.headline()
    for values in (ours, peer):
        assert f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}" in table


def test_the_benchmarks_page_shows_every_section_with_its_machine_and_date(report):
    hooks = _module(DOCS / "gen" / "hooks.py", "docs_hooks")
    page = (DOCS / "benchmarks.md").read_text()
    for section in report.SECTIONS:
        assert f"<!-- bench: {section} -->" in page
    rendered = hooks.render(page)
    assert "<!-- bench:" not in rendered
    assert rendered.count("From `") >= len(report.SECTIONS)
    assert re.search(r"AMD EPYC, 2 cores, \d{4}-\d\d-\d\d|not committed", rendered)


def test_the_cli_reference_shows_every_command():
    sys.modules.pop("docs_hooks", None)
    hooks = _module(DOCS / "gen" / "hooks.py", "docs_hooks")
    import typer

    from movierec.cli.common import app

    text = hooks.render((DOCS / "reference" / "cli.md").read_text())
    for name in typer.main.get_command(app).list_commands(None):  # type: ignore[attr-defined]
        assert f"## `movierec {name}`" in text
        assert f"Usage: movierec {name} [OPTIONS]" in text
