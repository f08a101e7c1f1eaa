"""Logging configuration, in one place: structlog for our events, stdlib loggers rendered the same way.

JSON lines on stderr in production (journald keeps them), readable console output on a terminal.
A redaction processor runs before rendering so secrets never reach a handler.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from structlog.tracebacks import ExceptionDictTransformer

__all__ = ["REDACTED", "configure_logging", "redact_secrets"]

REDACTED = "[redacted]"

# Keys whose values are secrets wherever they appear in an event, at any depth.
_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|private_key|assertion|authorization|api_key|access_key|master_key"
    r"|client_secret|cookie)",
    re.IGNORECASE,
)
# Values that look like secrets whatever their key: PEM private keys, bearer tokens, JWTs,
# and passwords inside URLs (amqp://user:pass@host).
_SECRET_VALUES = (
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S), REDACTED),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer " + REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+@"), r"\g<scheme>" + REDACTED + "@"),
    # A token response or form quoted whole in a message: {"access_token": "…"}, refresh_token=…&…
    (re.compile(r"(?i)(?P<name>\b(?:access_token|refresh_token|id_token|client_secret|client_assertion|code_verifier"
                r"|accessKey|access_key|password)[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,;}]+"), r"\g<name>" + REDACTED),
)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        for pattern, replacement in _SECRET_VALUES:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, bytes):
        return _redact_value(value.decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {k: (REDACTED if _SECRET_KEY.search(str(k)) else _redact_value(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(item) for item in value)
    return value


def redact_secrets(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: blank values under secret-looking keys and secret-looking values."""
    for key, value in list(event_dict.items()):
        if _SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        elif key != "exception":
            event_dict[key] = _redact_value(value)
    if "exception" in event_dict:
        event_dict["exception"] = _redact_value(event_dict["exception"])
    return event_dict


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    """Configure structlog and the stdlib root logger. ``fmt``: auto (console on a TTY), json, console."""
    stream = stream or sys.stderr
    use_console = fmt == "console" or (fmt == "auto" and hasattr(stream, "isatty") and stream.isatty())
    if use_console:
        renderer: list[Any] = [redact_secrets, structlog.dev.ConsoleRenderer(colors=stream.isatty())]
    else:
        renderer = [
            # Frame locals hold tokens and keys: never render them.
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            redact_secrets,
            structlog.processors.JSONRenderer(),
        ]
    shared = _shared_processors()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    logging.basicConfig(handlers=[handler], level=level.upper(), force=True)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request: our clients log what matters
    # httpcore at DEBUG logs raw response headers: a Location carrying an OAuth code, a Set-Cookie.
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # pika logs every failed connection attempt at ERROR with a traceback; the relay and dramatiq
    # report broker trouble themselves, once, in plain words.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
