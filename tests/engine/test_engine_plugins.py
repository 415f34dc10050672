"""The plugin manager: loud failures for misspelled hooks and duplicate names."""

from __future__ import annotations

import pluggy
import pytest

from offboard import Connector, hookimpl, plugins
from offboard.errors import PluginError

from .. import _fakes


class Spelled:
    @hookimpl
    def register_conectors(self, register):  # misspelled on purpose
        pass


def test_misspelled_hook_fails_loudly():
    pm = pluggy.PluginManager("offboard")
    from offboard import hookspecs

    pm.add_hookspecs(hookspecs)
    pm.register(Spelled())
    with pytest.raises(pluggy.PluginValidationError, match="register_conectors"):
        pm.check_pending()


def test_duplicate_connector_names_are_rejected():
    class Twin(Connector):
        name = "testsys"

        def disable_account(self, action):
            raise NotImplementedError

    class Plugin:
        @hookimpl
        def register_connectors(self, register):
            register(Twin)

    pm = pluggy.PluginManager("offboard")
    from offboard import hookspecs

    pm.add_hookspecs(hookspecs)
    pm.register(_fakes)
    pm.register(Plugin())
    with pytest.raises(PluginError, match="two connectors are named 'testsys'"):
        plugins.connector_classes(pm)


def test_capabilities_come_from_methods():
    caps = {k.value for k in _fakes.TestSystem.capabilities()}
    assert caps == {"disable_account", "revoke_sessions", "remove_memberships"}
    assert {k.value for k in _fakes.TestSystem.reversible()} == {"disable_account", "remove_memberships"}


def test_bundled_connectors_register():
    classes = plugins.connector_classes()
    assert all(issubclass(c, Connector) for c in classes.values())
