"""Errors shared across eboxd. Each one carries a message meant for an operator."""

from __future__ import annotations

__all__ = ["ConfigError", "EboxdError", "StartupError"]


class EboxdError(Exception):
    """Base class of the errors eboxd reports to an operator as one clear line."""

    exit_code = 1


class ConfigError(EboxdError):
    """The configuration file or an ``EBOXD_*`` variable is invalid."""

    exit_code = 2


class StartupError(EboxdError):
    """A dependency (database, broker) cannot be reached when a command starts."""

    exit_code = 2
