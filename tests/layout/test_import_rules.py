"""The import rules in pyproject.toml hold for the tree, and each one catches a deliberate violation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# One bad import per rule: (contract name as in pyproject.toml, module to change, the line it gains).
VIOLATIONS = {
    "connectors": (
        "Connectors import only the public contract",
        "connectors/offboard_connectors/slack.py",
        "from offboard.engine import _engine as _bad",
    ),
    "sandbox": (
        "Only the demo and the sandbox command import the sandbox",
        "src/offboard/inventory/_sweep.py",
        "from offboard import sandbox as _bad",
    ),
    "engine": (
        "The engine knows no screen: it imports neither the CLI nor the web layer",
        "src/offboard/engine/_plan.py",
        "from offboard.web import _app as _bad",
    ),
    "audit": (
        "The audit log stands alone: it imports only the public contract",
        "src/offboard/audit/_merkle.py",
        "from offboard.engine import _recorder as _bad",
    ),
    "state": (
        "Only state owns the database: SQLAlchemy and the schema",
        "src/offboard/checklist/_tasks.py",
        "import sqlalchemy as _bad",
    ),
    "layers": (
        "Subsystems import downwards only",
        "src/offboard/checklist/_notifiers.py",
        "from offboard.engine import _plan as _bad",
    ),
    "schema": (
        "Only state owns the database: SQLAlchemy and the schema",
        "src/offboard/web/_auditor.py",
        "from offboard.state import schema as _bad",
    ),
}


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter over the packages in ``tree`` with the project's contracts."""
    env = {**os.environ, "PYTHONPATH": f"{tree / 'src'}{os.pathsep}{tree / 'connectors'}"}
    lint = Path(sys.executable).with_name("lint-imports")
    command = [str(lint)] if lint.exists() else [sys.executable, "-m", "importlinter.cli"]
    return subprocess.run(
        [*command, "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    """The packages and pyproject.toml, copied so a test can break them."""
    tree = tmp_path_factory.mktemp("tree")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "src", tree / "src", ignore=ignore)
    shutil.copytree(ROOT / "connectors", tree / "connectors", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_tree_keeps_every_rule(copy):
    result = lint_imports(copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in result.stdout


@pytest.mark.parametrize("rule", sorted(VIOLATIONS))
def test_a_deliberate_violation_breaks_its_rule(copy, rule):
    contract, module, line = VIOLATIONS[rule]
    path = copy / module
    original = path.read_text()
    path.write_text(original + f"\n{line}  # a deliberate violation\n")
    try:
        result = lint_imports(copy)
    finally:
        path.write_text(original)
    assert result.returncode != 0, result.stdout
    assert f"{contract} BROKEN" in result.stdout, result.stdout
    assert module.split("/")[-1].removesuffix(".py") in result.stdout
