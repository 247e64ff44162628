"""The package's shape: imports point one way, and no module outgrows a screenful of reading."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "movierec"
MODULES = sorted(PACKAGE.rglob("*.py"))
TRAINING = {"movierec.training", "movierec.optim", "movierec.distributed", "movierec.checkpoints"}
"""The training loop and what only it needs: models must not reach up into them."""
MAX_LINES = 400


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names, line) of every import in ``path``, relative ones resolved."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = _name(path).split(".")
                base = base[: len(base) - node.level + (path.name == "__init__.py")]
                module = ".".join([*base, module] if module else base)
            found.append((module, [a.name for a in node.names], node.lineno))
    return found


def _submodules(package: str) -> set[str]:
    folder = PACKAGE.parent.joinpath(*package.split("."))
    return {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir() if (p / "__init__.py").exists()}


def test_the_helpers_read_imports_right():
    # A planted module: the walker must see each kind of import the real tests rely on.
    planted = PACKAGE / "models" / "base.py"
    modules = {m for m, _, _ in _imports(planted)}
    assert "torch" in modules and "movierec.errors" in modules
    assert "training" in _submodules("movierec") and "models" in _submodules("movierec")


@pytest.mark.parametrize("path", [p for p in MODULES if _name(p).startswith("movierec.models")], ids=_name)
def test_models_never_import_the_training_loop(path):
    upward = [
        (m, line)
        for m, names, line in _imports(path)
        if m in TRAINING or (m == "movierec" and TRAINING & {f"movierec.{n}" for n in names})
    ]
    assert not upward, f"{_name(path)} imports the training side: {upward}"


@pytest.mark.parametrize("path", [p for p in MODULES if _name(p).startswith("movierec.models")], ids=_name)
def test_models_leave_timing_and_history_to_the_one_loop(path):
    # A model supplies a sweep (movierec.models.base.Sweeps); timing each one, validating and
    # keeping the history are the training loop's, so no model reaches for a clock.
    clocks = [(m, line) for m, _, line in _imports(path) if m == "time"]
    assert not clocks, f"{_name(path)} times itself: {clocks}; return the sweep's loss and let training.run time it"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_nothing_inside_imports_the_package_init(path):
    # `from movierec import models` names a submodule; `from movierec import __version__` or a bare
    # `import movierec` runs the package's __init__ for a name it defines, an import that points up.
    submodules = _submodules("movierec")
    for module, names, line in _imports(path):
        assert module != "movierec" or names, f"{_name(path)}:{line} imports the package itself"
        if module == "movierec":
            not_modules = [n for n in names if n not in submodules]
            assert not not_modules, f"{_name(path)}:{line} imports {not_modules} from the package __init__"


def test_fitting_knows_models_only_through_their_specs():
    # What a model needs of a fit (EASE's genres, its size limit) is a ModelSpec hook; fitting and
    # the run plan reach the models through the registry and the contract alone.
    for name in ("fitting", "plan", "selection", "raters", "pipeline"):
        reached = {m for m, _, _ in _imports(PACKAGE / f"{name}.py") if m.startswith("movierec.models.")}
        assert reached <= {"movierec.models.base"}, f"movierec.{name} imports a model module: {reached}"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_module_over_400_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{_name(path)} has {lines} lines; split it by noun"


def test_serving_does_not_load_the_training_loop():
    code = (
        "import sys, movierec.serve.app, movierec.recommend, movierec.persist;"
        f"print(sorted(m for m in sys.modules if m in {sorted(TRAINING)!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
