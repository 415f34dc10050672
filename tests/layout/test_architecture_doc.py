"""docs/architecture.md shows the real layout: every folder of src/offboard is in its tree, every path it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
PACKAGE = ROOT / "src" / "offboard"


def named_paths(text: str) -> set[str]:
    """Paths in backticks that look like files or folders of the repository or the package."""
    found = set()
    for code in re.findall(r"`([^`\s]+)`", text):
        if "/" in code and re.fullmatch(r"[\w./-]+", code) and not code.startswith(("http", "/")):
            found.add(code)
    return found


def exists(path: str) -> bool:
    path = path.rstrip("/")
    candidates = [ROOT / path, ROOT / "src" / path, PACKAGE / path, ROOT / "connectors" / path]
    return any(c.exists() for c in candidates)


def test_every_path_the_architecture_names_exists():
    missing = sorted(p for p in named_paths(DOC.read_text()) if not exists(p))
    assert missing == []


def test_every_subsystem_folder_is_in_the_layout_tree():
    text = DOC.read_text()
    tree = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert folders, "no subsystem folders found"
    assert [f for f in folders if f"{f}/" not in tree] == []
    modules = sorted(p.name for p in PACKAGE.glob("*.py") if not p.name.startswith("_"))
    assert [m for m in modules if m not in tree] == []


def test_the_top_level_holds_only_the_public_contract_and_folders():
    private = sorted(p.name for p in PACKAGE.glob("_*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert private == []
