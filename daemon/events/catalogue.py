"""The integrator event catalogue: every CloudEvents ``type`` eboxd emits, with its JSON Schema."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["EVENT_TYPES", "SCHEMA_DIR", "event_schema"]

SCHEMA_DIR = Path(__file__).with_name("schemas")

EVENT_TYPES: dict[str, str] = {
    "be.eboxd.message.received": "A new message was found in an enterprise's e-Box.",
    "be.eboxd.document.stored": "A document (attachment) was downloaded, verified and stored.",
    "be.eboxd.payment.requested": "A document asks for a payment; sent again after every correction.",
    "be.eboxd.payment.matched": "A bank transaction was matched to a payment request, now paid.",
    "be.eboxd.payment.due_soon": "A payment request still to pay reaches its due date soon.",
    "be.eboxd.payment.overdue": "A payment request still to pay is past its due date.",
    "be.eboxd.export.completed": "A document was delivered to an exporter's target.",
    "be.eboxd.export.failed": "An export gave up after its last retry.",
}


@cache
def event_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the whole CloudEvent of ``event_type``."""
    if event_type not in EVENT_TYPES:
        raise KeyError(f"unknown event type {event_type!r}")
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{event_type}.json").read_text(encoding="utf-8"))
    return schema
