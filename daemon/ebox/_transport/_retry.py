"""Bounded retries with jittered exponential backoff.

Retried: timeouts, connection errors (connect, read, dropped connection), HTTP 429 and 5xx
(500/502/503/504 by default). ``Retry-After`` (seconds or HTTP-date) is honoured when it fits within
``max_delay``; a longer one ends the retries so the caller can reschedule instead of blocking a worker
thread. Everything else is returned to the caller at once.

The loop takes a ``send`` callable rather than wrapping an httpx transport so that each attempt can
build a fresh request: a token request must carry a new assertion (``jti``) every time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import structlog

from daemon.ebox._errors import EboxConnectionError, EboxTimeout
from daemon.tls import certificate_problem

__all__ = ["RetryPolicy", "parse_retry_after", "send_with_retry"]

log = structlog.get_logger(__name__)

Sleep = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try. ``max_attempts`` counts the first try (1 = no retries)."""

    max_attempts: int = 4
    initial_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0
    retry_statuses: frozenset[int] = field(default_factory=lambda: frozenset({429, 500, 502, 503, 504}))

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("delays must be >= 0 and multiplier >= 1")

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Delay before retry ``retry_number`` (1-based): "equal jitter" within [d/2, d]."""
        ceiling = min(self.max_delay, self.initial_delay * self.multiplier ** (retry_number - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


_RNG = random.Random()  # noqa: S311 - jitter, not cryptography


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), else ``None``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _is_retryable_exception(exc: httpx.TransportError) -> bool:
    # A certificate the client does not trust will not be trusted a second later either.
    if certificate_problem(exc) is not None:
        return False
    return not isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError)


def send_with_retry(
    send: Callable[[], httpx.Response],
    *,
    policy: RetryPolicy,
    method: str,
    url: str,
    sleep: Sleep = time.sleep,
    rng: random.Random | None = None,
) -> httpx.Response:
    """Call ``send`` until it returns a non-retryable response or the budget is spent.

    Returns the last response (which may still be a 429/5xx: the caller maps it to an error).
    Raises :class:`EboxTimeout` / :class:`EboxConnectionError` if the last attempt failed at the
    transport level. Retried responses are closed.
    """
    rng = rng or _RNG
    attempt = 0
    while True:
        attempt += 1
        last = attempt >= policy.max_attempts
        try:
            response = send()
        except httpx.TransportError as exc:
            if not _is_retryable_exception(exc):
                raise EboxConnectionError(
                    f"{method} failed: {type(exc).__name__}: {exc}", url=url, attempts=attempt
                ) from exc
            if last:
                error = EboxTimeout if isinstance(exc, httpx.TimeoutException) else EboxConnectionError
                raise error(f"{method} failed: {type(exc).__name__}: {exc}", url=url, attempts=attempt) from exc
            delay = policy.backoff(attempt, rng)
            log.warning(
                "ebox.http.retry",
                method=method,
                url=url,
                attempt=attempt,
                error=type(exc).__name__,
                delay=round(delay, 3),
            )
            sleep(delay)
            continue
        if response.status_code not in policy.retry_statuses or last:
            return response
        delay = policy.backoff(attempt, rng)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None:
            if retry_after > policy.max_delay:
                log.warning(
                    "ebox.http.retry_after_too_long",
                    method=method,
                    url=url,
                    status=response.status_code,
                    retry_after=retry_after,
                    max_delay=policy.max_delay,
                )
                return response
            delay = retry_after
        response.close()
        log.warning(
            "ebox.http.retry",
            method=method,
            url=url,
            attempt=attempt,
            status=response.status_code,
            delay=round(delay, 3),
        )
        sleep(delay)
