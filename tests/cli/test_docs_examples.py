"""Docs that cannot drift: the generated configuration reference, and every example config in the docs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from offboard import plugins
from offboard.config._config import Config
from offboard.config._policy import Policy
from offboard.config._reference import END, START, reference_table, update_page

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"```ya?ml\n(.*?)```", re.S)
CONFIG_KEYS = set(Config.model_fields)
POLICY_KEYS = set(Policy.model_fields)
#: YAML blocks in the docs that are neither a configuration nor a policy, named so that a new one is looked at.
NOT_CONFIG = {
    ("docs/inventory.md", "*"),  # a mapping file
    ("docs/sweeps.md", "apiVersion"),  # a Kubernetes CronJob
}


def test_the_configuration_reference_is_current():
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert START in page and END in page
    assert update_page(page) == page, "run: python -m offboard.config._reference --write"
    table = reference_table()
    for key in ("rates", "limits.max_rate_limited_wait", "notifiers", "server", "sweep", "inventory", "audit"):
        assert f"`{key}`" in table or f".{key}`" in table, key
    assert all(row.count("|") >= 4 and not row.endswith("|  |") for row in table.splitlines())


def test_every_nested_section_of_the_configuration_is_expanded():
    """A section whose type is a model (limits, tasks, cases, ...) lists its own keys in the reference."""
    from pydantic import BaseModel

    from offboard.config._config import Config
    from offboard.config._reference import SECTIONS

    nested = [
        name
        for name, field in Config.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    ]
    assert nested and set(nested) <= set(SECTIONS), f"add to SECTIONS: {sorted(set(nested) - set(SECTIONS))}"


def examples() -> list[tuple[str, int, Any]]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in BLOCK.finditer(text):
            line = text[: match.start()].count("\n") + 2
            found.append((str(page.relative_to(ROOT)), line, yaml.safe_load(match.group(1))))
    return found


def _settings_without_files(value: Any, monkeypatch, stand_in: Path, key: str = "") -> Any:
    """Settings checkable here: env:NAME set to a dummy, file:PATH turned into an env reference, and files
    the example names (``ca_file``) replaced by a stand-in that exists."""
    if isinstance(value, dict):
        return {k: _settings_without_files(v, monkeypatch, stand_in, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_settings_without_files(v, monkeypatch, stand_in) for v in value]
    if key.endswith("_file") and isinstance(value, str):
        return str(stand_in)
    if isinstance(value, str) and value.startswith("env:"):
        monkeypatch.setenv(value[4:], "docs-example-secret")
    if isinstance(value, str) and value.startswith("file:"):
        monkeypatch.setenv("DOCS_FILE_SECRET", "docs-example-secret")
        return "env:DOCS_FILE_SECRET"
    return value


@pytest.mark.parametrize(("page", "line", "data"), examples(), ids=lambda v: str(v) if not isinstance(v, dict) else "")
def test_every_example_config_in_the_docs_loads(page, line, data, monkeypatch, tmp_path):
    stand_in = tmp_path / "stand-in.pem"
    stand_in.write_text("")
    assert isinstance(data, dict), f"{page}:{line}: not a mapping"
    keys = set(data)
    if any((page, key) in NOT_CONFIG for key in keys):
        return
    if keys <= CONFIG_KEYS:
        config = Config.model_validate(data)
        classes = plugins.connector_classes()
        for name, connector in config.connectors.items():
            assert connector.type in classes, f"{page}:{line}: connectors.{name}: unknown type {connector.type}"
            settings = _settings_without_files(connector.settings, monkeypatch, stand_in)
            classes[connector.type].Settings.model_validate(settings)
    elif keys <= POLICY_KEYS:
        Policy.model_validate({"name": "example", "actions": ["disable_account"], **data})
    else:
        pytest.fail(f"{page}:{line}: keys {sorted(keys)} are neither a configuration nor a policy")
