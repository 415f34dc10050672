"""The plugin manager: bundled connectors and third-party plugins from entry points ``offboard``."""

from __future__ import annotations

import importlib
import pkgutil
import threading
from typing import Any

import pluggy

from . import hookspecs
from .connector import Connector
from .errors import PluginError

__all__ = ["get_plugin_manager", "connector_classes", "reset"]

#: Core modules that implement hooks, registered like any plugin.
DEFAULT_PLUGINS = ("offboard.checklist._notifiers", "offboard.intake._hr_adapters", "offboard.inventory._people")

_pm: pluggy.PluginManager | None = None
_lock = threading.Lock()


def _bundled_connector_modules() -> list[str]:
    try:
        import offboard_connectors
    except ImportError:  # pragma: no cover - broken install
        return []
    return [
        f"offboard_connectors.{m.name}"
        for m in pkgutil.iter_modules(offboard_connectors.__path__)
        if not m.name.startswith("_")
    ]


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loaded on first use."""
    global _pm
    with _lock:
        if _pm is None:
            pm = pluggy.PluginManager("offboard")
            pm.add_hookspecs(hookspecs)
            for name in (*DEFAULT_PLUGINS, *_bundled_connector_modules()):
                try:
                    module = importlib.import_module(name)
                except ModuleNotFoundError as exc:
                    if exc.name == name:  # optional core module not present
                        continue
                    raise PluginError(f"cannot load bundled plugin {name}: {exc}") from exc
                pm.register(module, name)
            pm.load_setuptools_entrypoints("offboard")
            try:
                pm.check_pending()
            except pluggy.PluginValidationError as exc:
                raise PluginError(f"a plugin implements a hook that does not exist: {exc}") from exc
            _pm = pm
        return _pm


def reset() -> None:
    """Forget the loaded plugins (tests use this after registering their own)."""
    global _pm
    with _lock:
        _pm = None


def connector_classes(pm: pluggy.PluginManager | None = None) -> dict[str, type[Connector]]:
    """Connector classes by name; a duplicate name is an error naming both."""
    pm = pm or get_plugin_manager()
    found: dict[str, type[Connector]] = {}

    def register(cls: Any) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Connector)) or not cls.name:
            raise PluginError(f"{cls!r} is not a Connector subclass with a name")
        if cls.name in found and found[cls.name] is not cls:
            other = found[cls.name]
            raise PluginError(
                f"two connectors are named {cls.name!r}: {other.__module__}.{other.__qualname__} "
                f"and {cls.__module__}.{cls.__qualname__}"
            )
        found[cls.name] = cls

    pm.hook.register_connectors(register=register)
    return found


def registered(hook_name: str, pm: pluggy.PluginManager | None = None) -> dict[str, Any]:
    """Classes registered through a ``register_*`` hook, by their ``name``."""
    pm = pm or get_plugin_manager()
    found: dict[str, Any] = {}

    def register(cls: Any) -> None:
        name = getattr(cls, "name", None)
        if not name:
            raise PluginError(f"{cls!r} registered through {hook_name} has no name")
        if name in found and found[name] is not cls:
            raise PluginError(f"two plugins registered {name!r} through {hook_name}")
        found[name] = cls

    getattr(pm.hook, hook_name)(register=register)
    return found
