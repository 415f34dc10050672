"""docs/shared-signals.md cannot drift: its example configuration loads, its URIs and keys are the code's."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from offboard.signals import ACCOUNT_DISABLED, ACCOUNT_ENABLED, CREDENTIAL_CHANGE, SESSION_REVOKED, VERIFICATION
from offboard.signals._settings import ReceiverSettings, SignalsSettings, TransmitterSettings, signals_settings

PAGE = Path(__file__).resolve().parents[2] / "docs" / "shared-signals.md"


def test_the_example_configuration_loads():
    text = PAGE.read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "signals:" in b]
    settings = signals_settings(yaml.safe_load(block)["server"]["signals"], "docs/shared-signals.md")
    assert settings is not None and set(settings.receivers) == {"crm", "okta"} and "idp" in settings.transmitters


def test_every_event_uri_and_key_is_documented():
    text = PAGE.read_text()
    for uri in (SESSION_REVOKED, ACCOUNT_DISABLED, CREDENTIAL_CHANGE, ACCOUNT_ENABLED, VERIFICATION):
        assert f"`{uri}`" in text, uri
    for model, prefix in (
        (SignalsSettings, ""),
        (ReceiverSettings, "receivers.<name>."),
        (TransmitterSettings, "transmitters.<name>."),
    ):
        for key in model.model_fields:
            if key in ("receivers", "transmitters"):
                continue
            assert f"`{prefix}{key}`" in text or f"`{key}`" in text, f"{prefix}{key} is not in the table"
