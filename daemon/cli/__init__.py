"""The ``eboxd`` command line. Errors an operator can fix print as one line and exit non-zero.

Each group of commands lives in its own module, which exports its ``COMMANDS``; they are added
to the ``eboxd`` group here.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from daemon import __version__
from daemon.cli import bank, core, doctor, enterprise, exporters, keys, messages, payment, sandbox
from daemon.cli._state import State
from daemon.errors import EboxdError

__all__ = ["cli", "main"]

LONG_RUNNING = {"serve", "worker", "sandbox"}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


for _command in (*core.COMMANDS, *enterprise.COMMANDS, *sandbox.COMMANDS, *doctor.COMMANDS,
                 *messages.COMMANDS, *payment.COMMANDS, *keys.COMMANDS, *exporters.COMMANDS, *bank.COMMANDS):
    cli.add_command(_command)


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
