"""Every plugin hook offboard calls, in one file."""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("offboard")
hookimpl = HookimplMarker("offboard")


@hookspec
def register_connectors(register):
    """Register connector classes: call ``register(ConnectorClass)`` for each."""


@hookspec
def register_people_sources(register):
    """Register people-source classes (HR exports, directory attributes): ``register(SourceClass)``."""


@hookspec
def register_notifiers(register):
    """Register notifier classes (Slack, email, ...): ``register(NotifierClass)``."""


@hookspec
def register_commands(cli):
    """Add click commands or groups to the ``offboard`` CLI."""


@hookspec(firstresult=True)
def parse_webhook(source, headers, body, settings):
    """Verify and parse an HR system's webhook for ``source``; return a list of HR events or None."""


@hookspec(firstresult=True)
def checkpoint_signer(config, data_dir):
    """Return the signer for audit checkpoints (a KMS or Vault signer), or None for the local key."""


@hookspec
def case_closed(engine, case, summary):
    """Called after a case closes, whatever its status: ``case`` has id, person_id, status, trigger, policy."""
