"""Logging set up by a test (or by a command it runs in process), put back afterwards."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from daemon.logging import configure_logging


@contextmanager
def restored_logging() -> Iterator[None]:
    """Whatever configures logging inside (eboxd commands do, at start) is undone on leaving:
    the root logger's handlers and level, and structlog's configuration."""
    handlers, level = logging.root.handlers[:], logging.root.level
    try:
        yield
    finally:
        logging.root.handlers[:] = handlers
        logging.root.setLevel(level)
        structlog.reset_defaults()


@contextmanager
def eboxd_logs(level: str = "debug") -> Iterator[io.StringIO]:
    """Every log line from inside, rendered as eboxd renders it (JSON), in a string."""
    stream = io.StringIO()
    with restored_logging():
        configure_logging(level, "json", stream)
        yield stream
