"""Names and queues of our actors, importable without a broker.

The outbox writes tasks by these references, so ``eboxd serve`` never imports the actor modules
(whose decorators need a configured broker).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["EXPORT_DOCUMENT", "FETCH_MESSAGE", "IMPORT_CODA", "MATCH_PAYMENTS", "POLL_ENTERPRISE", "PURGE_OUTBOX",
           "QUEUES", "SYNC_PONTO", "TaskRef"]


class TaskRef(NamedTuple):
    actor_name: str
    queue_name: str


PURGE_OUTBOX = TaskRef("purge_outbox", "maintenance")
POLL_ENTERPRISE = TaskRef("poll_enterprise", "poll")
FETCH_MESSAGE = TaskRef("fetch_message", "fetch")
EXPORT_DOCUMENT = TaskRef("export_document", "export")
IMPORT_CODA = TaskRef("import_coda", "banking")
MATCH_PAYMENTS = TaskRef("match_payments", "banking")
SYNC_PONTO = TaskRef("sync_ponto", "banking")

QUEUES: tuple[str, ...] = ("poll", "fetch", "export", "banking", "maintenance")
