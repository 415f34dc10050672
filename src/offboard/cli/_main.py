"""``offboard``: the command line. Exit codes: 0 complete, 3 incomplete, 2 usage or config error, 1 unexpected."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import ConfigError, OffboardError, UnknownPerson

if TYPE_CHECKING:  # imported when used: `offboard --help` must start fast
    from ..config._config import Config
    from ..engine._engine import Engine

EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3
EXIT_SIGPIPE = 128 + 13

#: Sub-commands in their own modules: (module, attribute). Imported on first use so
#: ``offboard --help`` stays fast.
LAZY_COMMANDS = {
    "plan": ("offboard.cli._cases", "plan"),
    "revoke": ("offboard.cli._cases", "revoke"),
    "status": ("offboard.cli._cases", "status"),
    "resume": ("offboard.cli._cases", "resume"),
    "undo": ("offboard.cli._cases", "undo"),
    "connectors": ("offboard.cli._admin", "connectors"),
    "policies": ("offboard.cli._admin", "policies"),
    "demo": ("offboard.cli._admin", "demo"),
    "audit": ("offboard.cli._audit", "audit"),
    "sandbox": ("offboard.cli._sandbox", "sandbox"),
    "serve": ("offboard.cli._serve", "serve"),
    "events": ("offboard.cli._serve", "events"),
    "inventory": ("offboard.cli._inventory", "inventory"),
    "sweep": ("offboard.cli._inventory", "sweep"),
    "worker": ("offboard.cli._worker", "worker"),
    "tasks": ("offboard.cli._tasks", "tasks"),
    "witness": ("offboard.cli._witness", "witness"),
    "cases": ("offboard.cli._owed", "cases"),
    "check": ("offboard.cli._check", "check"),
    "config": ("offboard.cli._config", "config"),
}
HELP = {
    "plan": "Show what would happen for PERSON; writes nothing.",
    "revoke": "Disable every account PERSON holds, verify, and record it.",
    "status": "Show one case, or the latest cases.",
    "resume": "Finish interrupted cases and run due follow-ups.",
    "undo": "Restore what is reversible in CASE.",
    "connectors": "List installed connectors and what they can do.",
    "policies": "Inspect and validate policies.",
    "demo": "Revoke a departing person across a simulated company.",
    "audit": "Verify the signed audit log and export evidence.",
    "sandbox": "Serve simulated SaaS systems on localhost.",
    "serve": "Receive HR events over HTTP and run due work.",
    "events": "List received HR events and what became of them.",
    "inventory": "Sync, show and audit the account inventory.",
    "sweep": "Revoke everyone past their end date who still has access.",
    "worker": "Run jobs from PostgreSQL (execution: distributed).",
    "tasks": "List and close the checklist tasks of cases.",
    "witness": "Run an independent witness that cosigns audit checkpoints.",
    "cases": "List, retry or abandon owed work (failed actions).",
    "check": "Ask every system what PERSON still holds (read-only).",
    "config": "Show the effective configuration and check that it works.",
}


#: Global options that may also come after the sub-command (``offboard plan X --config f.yaml``):
#: name -> whether it takes a value.
GLOBAL_OPTIONS = {"--config": True, "--data-dir": True, "--verbose": False, "-v": False, "-vv": False, "-vvv": False}


def hoist_global_options(args: list[str]) -> list[str]:
    """Move global options found after the sub-command to the front, so click parses them as the group's."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            front.append(arg)
            if GLOBAL_OPTIONS[name] and "=" not in arg and i + 1 < len(args):
                front.append(args[i + 1])
                i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


class OffboardGroup(click.Group):
    """Loads sub-commands lazily and turns errors into one clear line and an exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = click.utils.make_str(args[0]) if args else None
        if name is not None and not name.startswith("-") and self.get_command(ctx, name) is None:
            from ..config._hints import did_you_mean

            hint = did_you_mean(name, self.list_commands(ctx))
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        if name not in LAZY_COMMANDS:
            return None
        module, attr = LAZY_COMMANDS[name]
        try:
            command = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            if exc.name and module.startswith(exc.name):
                return _unavailable(name, f"the {name} component is not installed in this build")
            raise
        self.add_command(command, name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (name, HELP.get(name) or (self.commands[name].get_short_help_str() if name in self.commands else ""))
            for name in self.list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except (ConfigError, UnknownPerson) as exc:
            _fail(str(exc), EXIT_USAGE)
        except OffboardError as exc:
            _fail(str(exc), EXIT_UNEXPECTED)
        except BrokenPipeError:  # `offboard ... | head`: the reader has gone; stop quietly
            quiet_broken_pipe()
        except KeyboardInterrupt:
            _fail("interrupted; run `offboard resume` to finish any case left running", 130)
        except Exception as exc:
            if os.environ.get("OFFBOARD_DEBUG"):
                raise
            from ..config._logging import redact

            _fail(
                f"unexpected {type(exc).__name__}: {redact(str(exc))} (set OFFBOARD_DEBUG=1 for a traceback)",
                EXIT_UNEXPECTED,
            )


def quiet_broken_pipe() -> None:
    """Exit 141 (as if killed by SIGPIPE) without another write to the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(EXIT_SIGPIPE)


def _fail(message: str, code: int) -> None:
    from ..config._logging import redact

    click.echo(f"error: {redact(message)}", err=True)
    sys.exit(code)


def _unavailable(name: str, why: str) -> click.Command:
    @click.command(name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def command() -> None:
        _fail(why, EXIT_USAGE)

    return command


@click.group(cls=OffboardGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="offboard")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="OFFBOARD_CONFIG",
    help="Configuration file (else OFFBOARD_CONFIG, ./offboard.yaml, $OFFBOARD_HOME/offboard.yaml, "
    "~/.config/offboard/offboard.yaml).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="OFFBOARD_HOME",
    help="Where state and the audit log live (or OFFBOARD_HOME).",
)
@click.option("-v", "--verbose", count=True, help="Log lines on stderr, not DATA_DIR/offboard.log (repeat for debug).")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, data_dir: Path | None, verbose: int) -> None:
    """Disable every account a departing person holds: fast, everywhere, provably.

    \b
    Exit codes: 0 complete, 3 incomplete, 2 usage or configuration error, 1 unexpected.
    """
    if data_dir is not None:
        os.environ["OFFBOARD_HOME"] = str(data_dir)
    if config_path is not None:
        os.environ["OFFBOARD_CONFIG"] = str(config_path)
    from_env = ctx.get_parameter_source("config_path") == click.core.ParameterSource.ENVIRONMENT
    ctx.obj = App(None if from_env else config_path, verbose)
    from ..config._logging import configure_logging

    configure_logging(verbose)


class App:
    """What every command needs, built on first use."""

    def __init__(self, config_path: Path | None, verbose: int):
        self.config_path = config_path
        self.verbose = verbose
        self._config: Config | None = None
        self._engine: Engine | None = None
        self._scratch: Path | None = None
        from ..config._discovery import discover

        self.discovery = discover(config_path)

    @property
    def config(self) -> Any:
        if self._config is None:
            from ..config._config import Config, load_config

            path, origin = self.discovery.path, self.discovery.origin
            if path is not None and not path.exists() and origin in ("--config", "OFFBOARD_CONFIG"):
                raise ConfigError(
                    f"{path} (from {origin}) does not exist: write one (see docs/configuration.md, "
                    f"or `offboard sandbox up` for a sandbox's) or point {origin} at your configuration file"
                )
            self._config = load_config(path) if path is not None else Config()
        return self._config

    def require_connectors(self) -> None:
        """Stop with exit 2 and where we looked when no connector is configured."""
        if self.config.connectors:
            return
        if self.discovery.path is None:
            raise ConfigError(self.discovery.where_looked())
        raise ConfigError(
            f"{self.discovery.path} (from {self.discovery.origin}) defines no connectors; "
            "add a `connectors:` section (see docs/configuration.md)"
        )

    def engine(self, *, needs_connectors: bool = False, read_only: bool = False) -> Any:
        """The engine. ``read_only`` never creates the data folder, a database or a key: with no data
        folder yet it works on a scratch database that is removed afterwards."""
        if needs_connectors:
            self.require_connectors()
        if self._engine is None:
            from ..config._paths import data_dir
            from ..engine._engine import Engine

            ctx = click.get_current_context()
            if read_only:
                self._engine = self._read_only_engine(data_dir(create=False))
            else:
                self._engine = Engine.open(self.config, data_dir())
            ctx.call_on_close(self._engine.close)
        return self._engine

    def _read_only_engine(self, home: Path) -> Any:
        import shutil
        import tempfile

        from ..engine._engine import Engine
        from ..state._store import Store

        if self.config.store is None and not (home / "offboard.db").is_file():
            self._scratch = Path(tempfile.mkdtemp(prefix="offboard-readonly-"))
            click.get_current_context().call_on_close(lambda: shutil.rmtree(self._scratch or "", ignore_errors=True))
            store = Store.open(None, self._scratch)
        else:
            store = Store.open(self.config.store, home)
        try:
            return Engine(self.config, store, home, audit=None)
        except BaseException:
            store.close()
            raise

    def require_data(self) -> Path:
        """The data folder, which must exist: a clear error (exit 2) naming it otherwise."""
        from ..config._paths import data_dir

        home = data_dir(create=False)
        if self.config.store is None and not (home / "offboard.db").is_file():
            raise ConfigError(
                f"no offboard data at {home}: nothing has run with this data folder yet "
                "(check --data-dir / OFFBOARD_HOME, or run `offboard demo` or `offboard revoke` first)"
            )
        return home


def _json_default(value: Any) -> Any:
    """Timestamps in ISO 8601 with a ``T``; anything else as its string."""
    from datetime import date, datetime

    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def emit_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout (timestamps ISO 8601)."""
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=_json_default))


def main() -> None:
    args = sys.argv[1:]
    # Plugins may add commands; load them unless this is only the top-level help, which
    # must come up fast (loading every connector costs more than the rest of start-up).
    if any(not a.startswith("-") for a in args) or not set(args) <= {"-h", "--help", "--version"}:
        from ..plugins import get_plugin_manager

        try:
            get_plugin_manager().hook.register_commands(cli=cli)
        except OffboardError as exc:
            _fail(str(exc), EXIT_USAGE)
    try:
        cli(prog_name="offboard")
    except BrokenPipeError:
        quiet_broken_pipe()
