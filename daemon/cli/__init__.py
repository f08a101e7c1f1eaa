"""The ``eboxd`` command line. Errors an operator can fix print as one line and exit non-zero.

Each group of commands lives in its own module, which exports its ``COMMANDS``. The ``eboxd``
group knows them by name and imports a module only when one of its commands runs (or ``--help``
lists them all): a command pays for its own imports only (``eboxd export zip`` does not load the
PDF, QR and CODA code; a worker's memory is mostly imports). Plugins add theirs through
``eboxd_register_commands`` (e.g. ``eboxd yuki``); those are looked up only when a name is not
built in, so plugins load lazily too and cannot shadow a built-in.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from daemon import __version__
from daemon.cli._state import State
from daemon.errors import EboxdError

__all__ = ["cli", "main"]

LONG_RUNNING = {"serve", "worker", "sandbox"}

# Built-in command -> the module of daemon.cli that defines it (a test keeps this table complete).
BUILT_IN = {
    **dict.fromkeys(("init", "db", "config", "outbox", "status", "serve", "worker"), "core"),
    "enterprise": "enterprise", "sandbox": "sandbox", "doctor": "doctor",
    **dict.fromkeys(("messages", "documents", "poll"), "messages"),
    "payment": "payment", "keys": "keys",
    **dict.fromkeys(("plugins", "exporter", "exports", "export"), "exporters"),
    "bank": "bank",
}


def built_in_command(name: str) -> click.Command | None:
    module = BUILT_IN.get(name)
    if module is None:
        return None
    commands = importlib.import_module(f"daemon.cli.{module}").COMMANDS
    return next(command for command in commands if command.name == name)


class _EboxdGroup(click.Group):
    """Built-in commands first, then those plugins register; a plugin cannot shadow a built-in."""

    def _plugin_commands(self) -> dict[str, click.Command]:
        import structlog  # noqa: PLC0415

        from daemon.logging import configure_logging  # noqa: PLC0415
        from daemon.plugins import get_plugin_manager  # noqa: PLC0415 - load plugins only when needed

        if not structlog.is_configured():
            configure_logging("error")  # before the configuration is read: only plugin failures show
        return {name: command for name, command in get_plugin_manager().commands().items()
                if name not in BUILT_IN and name not in self.commands}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*BUILT_IN, *super().list_commands(ctx), *self._plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return (built_in_command(cmd_name) or super().get_command(ctx, cmd_name)
                or self._plugin_commands().get(cmd_name))


@click.group(cls=_EboxdGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False), envvar="EBOXD_CONFIG",
              help="TOML configuration file (default: $EBOXD_CONFIG, else /etc/eboxd/eboxd.toml).")
@click.option("--verbose", "-v", is_flag=True, help="Log at the configured level, not only errors.")
@click.version_option(__version__, prog_name="eboxd")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """eboxd: e-Box Enterprise to bank and accountant, for many enterprises at once."""
    ctx.obj = State(config_path)
    ctx.obj.verbose = verbose
    ctx.obj.long_running = ctx.invoked_subcommand in LONG_RUNNING


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="eboxd", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("eboxd: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except EboxdError as exc:
        click.echo(f"eboxd: error: {exc}", err=True)
        sys.exit(exc.exit_code)
