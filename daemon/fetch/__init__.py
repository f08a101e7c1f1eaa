"""Fetching messages: attachments into the document store, payment requests from their text."""

from __future__ import annotations

from daemon.fetch.failures import failure_reason, record_fetch_failure, requeue_failed_fetches
from daemon.fetch.fetcher import FetchOutcome, fetch_message

__all__ = ["FetchOutcome", "failure_reason", "fetch_message", "record_fetch_failure", "requeue_failed_fetches"]
