"""Staying inside Exact's limits (accounting spec §1.5), per key = (host, app, division): Exact
counts them per app and company, not per user, so enterprises sharing a connection (one Exact
user) still each have their own division's budget.

- Minutely (60): with two calls or fewer left before ``X-RateLimit-Minutely-Reset``, wait for
  the reset (+1 s) — Exact answers 429 even with calls left, so not down to zero.
- Daily (5,000): an export starts only when the day has the calls it needs left
  (``ensure_daily``), else it stops for the day: ``DailyLimitReached`` until ``X-RateLimit-Reset``,
  deferred rather than half done; a single call stops likewise at zero left.
- 429: wait for the minutely reset and try once more; a spent day defers.
- Errors: Exact blocks a key for an hour after more than 10 error answers (400/401/403/404) an
  hour. After ``MAX_ERRORS`` in the last hour the circuit opens: ``CircuitOpen`` until the
  oldest of them is an hour old. The errors are counted in an ``ErrorLog``: the database's
  (``daemon.credentials.CallErrorLog``), shared by every worker process, or one in memory. Calls
  already in flight when the circuit opens may still fail, so the bound is ``MAX_ERRORS − 1`` plus
  the calls in flight for the key (the workers' threads): 4 + 6 ≤ 10.

The clock and the sleep are injectable so that tests can fake a minute or the next day.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from eboxd_exact.errors import CircuitOpen, DailyLimitReached

__all__ = ["MAX_ERRORS", "MINUTELY_RESERVE", "ErrorLog", "MemoryErrorLog", "RateGovernor", "clear_governors",
           "governor_for"]

log = structlog.get_logger(__name__)

MINUTELY_RESERVE = 2
MAX_ERRORS = 5
ERROR_WINDOW = dt.timedelta(hours=1)
RESET_MARGIN = dt.timedelta(seconds=1)


def _reset_time(value: str | None) -> dt.datetime | None:
    """Exact's resets are epoch milliseconds (its SDK says seconds: values > 10¹² are ms)."""
    if not value or not value.strip().isdigit():
        return None
    number = int(value)
    return dt.datetime.fromtimestamp(number / 1000 if number > 10**12 else number, dt.UTC)


def _int(value: str | None) -> int | None:
    return int(value) if value and value.strip().isdigit() else None


class ErrorLog(Protocol):
    def record(self, at: dt.datetime, *, endpoint: str = "", status: int = 0) -> None: ...

    def since(self, at: dt.datetime) -> list[dt.datetime]:
        """When the errors after ``at`` occurred, oldest first."""
        ...


@dataclass
class MemoryErrorLog:
    """This process's errors only (no database at hand)."""

    errors: deque[dt.datetime] = field(default_factory=deque)

    def record(self, at: dt.datetime, *, endpoint: str = "", status: int = 0) -> None:
        self.errors.append(at)

    def since(self, at: dt.datetime) -> list[dt.datetime]:
        while self.errors and self.errors[0] <= at:
            self.errors.popleft()
        return list(self.errors)


@dataclass
class _State:
    minutely_remaining: int | None = None
    minutely_reset: dt.datetime | None = None
    daily_remaining: int | None = None
    daily_reset: dt.datetime | None = None


class RateGovernor:
    """Shared by every client of one key in this process (``governor_for``); thread-safe."""

    def __init__(self, key: str, *, clock: Callable[[], dt.datetime], sleep: Callable[[float], None],
                 errors: ErrorLog | None = None) -> None:
        self.key = key
        self.clock = clock
        self.sleep = sleep
        self.errors: ErrorLog = errors or MemoryErrorLog()
        self._state = _State()
        self._lock = threading.Lock()

    def before_call(self) -> None:
        """Raise or wait as the limits say; return when a call may go out."""
        wait = 0.0
        now = self.clock()
        recent = self.errors.since(now - ERROR_WINDOW)
        if len(recent) >= MAX_ERRORS:
            until = recent[0] + ERROR_WINDOW
            raise CircuitOpen(f"Exact: {len(recent)} error answers in the last hour for {self.key}; "
                              f"calls paused until {until.isoformat()} (Exact blocks a key after 10)", until=until)
        with self._lock:
            state = self._state
            self._check_daily(now, 1)
            if (state.minutely_remaining is not None and state.minutely_reset is not None
                    and now < state.minutely_reset and state.minutely_remaining <= MINUTELY_RESERVE):
                wait = (state.minutely_reset - now + RESET_MARGIN).total_seconds()
                state.minutely_remaining = None  # a new minute after the wait
            elif state.minutely_remaining is not None:
                state.minutely_remaining -= 1  # a peer thread's call counts before its answer arrives
        if wait > 0:
            log.info("exact.rate_limit_wait", key=self.key, seconds=round(wait, 1))
            self.sleep(wait)

    def ensure_daily(self, calls: int) -> None:
        """Raise ``DailyLimitReached`` unless today still has ``calls`` calls left (as last seen)."""
        with self._lock:
            self._check_daily(self.clock(), calls)

    def _check_daily(self, now: dt.datetime, calls: int) -> None:
        state = self._state
        if state.daily_reset is not None and now >= state.daily_reset:
            state.daily_remaining = state.daily_reset = None  # a new day: unknown until the next answer
        if state.daily_remaining is not None and state.daily_reset is not None and state.daily_remaining < calls:
            raise DailyLimitReached(f"Exact: {state.daily_remaining} calls left today for {self.key}, {calls} "
                                    f"needed; paused until {state.daily_reset.isoformat()}",
                                    until=state.daily_reset + RESET_MARGIN)

    def observe(self, headers: Mapping[str, str]) -> None:
        with self._lock:
            state = self._state
            minutely = _int(headers.get("X-RateLimit-Minutely-Remaining"))
            if minutely is not None:
                state.minutely_remaining = minutely
                state.minutely_reset = _reset_time(headers.get("X-RateLimit-Minutely-Reset"))
            daily = _int(headers.get("X-RateLimit-Remaining"))
            if daily is not None:
                state.daily_remaining = daily
                state.daily_reset = _reset_time(headers.get("X-RateLimit-Reset"))

    def after_throttle(self, headers: Mapping[str, str]) -> None:
        """A 429: defer when the day is spent, else wait for the minute's reset."""
        self.observe(headers)
        now = self.clock()
        with self._lock:
            state = self._state
            if state.daily_remaining == 0 and state.daily_reset is not None and now < state.daily_reset:
                raise DailyLimitReached(f"Exact: daily limit reached for {self.key}; paused until "
                                        f"{state.daily_reset.isoformat()}", until=state.daily_reset + RESET_MARGIN)
            reset = state.minutely_reset if state.minutely_reset and state.minutely_reset > now else None
            state.minutely_remaining = None
        wait = ((reset - now) if reset else dt.timedelta(seconds=60 - now.second)) + RESET_MARGIN
        log.info("exact.throttled", key=self.key, seconds=round(wait.total_seconds(), 1))
        self.sleep(wait.total_seconds())

    def record_error(self, endpoint: str = "", status: int = 0) -> None:
        self.errors.record(self.clock(), endpoint=endpoint, status=status)

    def errors_in_window(self) -> int:
        return len(self.errors.since(self.clock() - ERROR_WINDOW))


_governors: dict[str, RateGovernor] = {}
_governors_lock = threading.Lock()


def governor_for(key: str, *, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 sleep: Callable[[float], None] = time.sleep,
                 errors: Callable[[], ErrorLog] | None = None) -> RateGovernor:
    """The process's governor of ``key`` (created with this clock, sleep and error log on first use)."""
    with _governors_lock:
        governor = _governors.get(key)
        if governor is None:
            governor = _governors[key] = RateGovernor(key, clock=clock, sleep=sleep,
                                                      errors=errors() if errors else None)
        return governor


def clear_governors() -> None:
    """Forget every key's state (tests)."""
    with _governors_lock:
        _governors.clear()
