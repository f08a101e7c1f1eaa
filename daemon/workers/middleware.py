"""dramatiq middleware of our own: logging context per message."""

from __future__ import annotations

from typing import Any

import dramatiq
import structlog

__all__ = ["LogContext"]


class LogContext(dramatiq.Middleware):
    """Bind message id, actor and retry count to every log line of a message; worker threads are
    reused, so the context is cleared before and after each one."""

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            message_id=message.message_id, actor=message.actor_name, retries=message.options.get("retries", 0)
        )

    def after_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        structlog.contextvars.clear_contextvars()

    after_skip_message = after_process_message
