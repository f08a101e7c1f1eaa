"""CloudEvents 1.0 (structured JSON mode) envelopes for the integrator exchange."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from daemon.events.catalogue import EVENT_TYPES

__all__ = ["CONTENT_TYPE", "EVENT_ID_NAMESPACE", "SOURCE", "build_cloudevent", "stable_event_id"]

CONTENT_TYPE = "application/cloudevents+json"
SOURCE = "urn:eboxd"
# Event ids derive from the idempotency key, so re-emitting the same fact gives the same id and
# consumers can dedupe on it.
EVENT_ID_NAMESPACE = uuid.UUID("6f1b1d5e-8a0c-4d8e-9b9e-2f3b6d0a7c11")


def stable_event_id(idempotency_key: str) -> str:
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, idempotency_key))


def build_cloudevent(event_type: str, *, subject: str, data: dict[str, Any], event_id: str,
                     time: dt.datetime, source: str = SOURCE) -> dict[str, Any]:
    """The envelope: ``subject`` is the enterprise number, ``data`` the type's payload."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}; known: {', '.join(sorted(EVENT_TYPES))}")
    if time.tzinfo is None:
        raise ValueError("event time must be timezone-aware")
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": event_type,
        "subject": subject,
        "time": time.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "dataschema": f"https://eboxd.be/schemas/{event_type}.json",
        "data": data,
    }
