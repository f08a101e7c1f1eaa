"""HTTP plumbing private to :mod:`daemon.ebox`."""

from __future__ import annotations

from ._retry import RetryPolicy, parse_retry_after, send_with_retry

__all__ = ["RetryPolicy", "parse_retry_after", "send_with_retry"]
