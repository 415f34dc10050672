"""Shared fixtures for the cloud connector tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from offboard import Secret

from ._spec import record, violations
from ._support import FaultGate, serve_wsgi

SCIM2_TOKEN = "scim2-server-token-" + uuid.uuid4().hex


@pytest.fixture(scope="session")
def scim2_server() -> Iterator[tuple[str, FaultGate]]:
    """scim2-server from PyPI, in-process on a free port, behind a fault gate."""
    from scim2_models import ScimProvider
    from scim2_server.memory import InMemoryStorage
    from scim2_server.service import ScimService
    from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication
    from scim2_server.utils import (
        load_default_resource_types,
        load_default_schemas,
        load_default_service_provider_config,
    )

    config = load_default_service_provider_config()
    config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
    provider = ScimProvider.from_discovery(
        load_default_schemas().values(), load_default_resource_types().values(), config=config
    )
    service = ScimService(provider, secret=uuid.uuid4().hex * 2)
    app = BearerTokenApplication(InMemoryStorage(), provider, service=service, bearer_tokens=[SCIM2_TOKEN])
    gate = FaultGate(app)
    with serve_wsgi(gate) as url:
        yield url, gate


@pytest.fixture
def secret() -> Callable[[str], Secret]:
    """Make an ``offboard.Secret`` directly (tests do not go through env: references)."""
    return lambda value: Secret(value, source="test")


@pytest.fixture(scope="module")
def sandbox(request):
    """The offboard sandbox serving only this module's ``SYSTEM`` (module-scoped: tests take fresh people)."""
    system = request.module.SYSTEM
    from offboard.sandbox import SYSTEMS, Sandbox

    assert system in SYSTEMS, f"the sandbox has no {system} simulator"
    sb = Sandbox(people=150, seed=11, systems=(system,)).start()
    sent = record(sb.sim(system))  # kept apart from the simulator's log, which tests clear
    try:
        yield sb
        found = violations(system, sent)
    finally:
        sb.stop()
    if found:  # every request the module's tests sent, checked against the vendor's specification
        pytest.fail(f"{len(found)} request(s) the {system} specification does not allow:\n" + "\n".join(found[:20]))


@pytest.fixture(scope="module")
def sandbox_people(sandbox, request):
    """An iterator of sandbox people holding an account in ``SYSTEM`` (never protected admins)."""
    system = request.module.SYSTEM
    pool = [
        i
        for i in sandbox.company.in_system(system)
        if i.kind == "person" and i.person is not None and not i.protected and not i.admin and i.person.active
    ]
    return iter(pool)


@pytest.fixture
def sandbox_settings(sandbox, request) -> dict:
    return dict(sandbox.config()["connectors"][request.module.SYSTEM]["settings"])


@pytest.fixture
def sandbox_secrets(sandbox_settings) -> list[str]:
    """The secret values behind the ``file:`` references of the sandbox config."""
    from pathlib import Path

    values = []
    for value in sandbox_settings.values():
        if isinstance(value, str) and value.startswith("file:"):
            values.append(Path(value[5:]).read_text().strip())
    return values
