"""Secrets given as command-line options: accepted, with a warning, since every local user can read
a process's arguments (``ps``) and the shell keeps them in its history."""

from __future__ import annotations

import click
from click.core import ParameterSource

__all__ = ["warn_if_on_command_line"]


def warn_if_on_command_line(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback of a secret option: says where to put the secret instead when it was typed
    on the command line (an environment variable or the hidden prompt)."""
    if value is not None and param.name and ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE:
        instead = f"${param.envvar} or the hidden prompt" if isinstance(param.envvar, str) else "the hidden prompt"
        click.echo(f"warning: {param.opts[0]} on the command line is visible to every local user (ps) and kept in "
                   f"the shell's history; use {instead} instead", err=True)
    return value
