"""Every plugin hook offboard calls, in one file; docs/writing-plugins.md documents each one."""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("offboard")
hookimpl = HookimplMarker("offboard")


@hookspec
def register_connectors(register):
    """Register connector classes (``offboard.Connector``): call ``register(ConnectorClass)`` for each."""


@hookspec
def register_people_sources(register):
    """Register people-source classes (``offboard.PeopleSource``): ``register(SourceClass)``."""


@hookspec
def register_notifiers(register):
    """Register notifier classes (``offboard.Notifier``): ``register(NotifierClass)``."""


@hookspec
def register_commands(cli):
    """Add click commands or groups to the ``offboard`` CLI (the root ``click.Group``)."""


@hookspec(firstresult=True)
def parse_webhook(source, headers, body, settings):
    """Verify and parse an HR system's webhook for ``source``: a list of ``offboard.HREvent``, or None if not yours."""


@hookspec(firstresult=True)
def checkpoint_signer(config, data_dir):
    """Return the ``offboard.Signer`` for audit checkpoints (a KMS or Vault key), or None for the local key."""


@hookspec
def case_closed(case):
    """Called after a case closes, whatever its status, with an ``offboard.CaseClosed``."""
