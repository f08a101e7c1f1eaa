"""Polling e-Boxes: the schedule in the database, and one enterprise's poll."""

from __future__ import annotations

from daemon.poll.access import EboxAccess
from daemon.poll.poller import PollOutcome, poll_enterprise
from daemon.poll.schedule import Lease, claim_due_polls, finish_poll, request_poll, start_poll

__all__ = ["EboxAccess", "Lease", "PollOutcome", "claim_due_polls", "finish_poll", "poll_enterprise",
           "request_poll", "start_poll"]
