"""Events for integrators: the CloudEvents contract and its catalogue of types and schemas."""

from __future__ import annotations

from daemon.events.catalogue import EVENT_TYPES, event_schema
from daemon.events.cloudevents import CONTENT_TYPE, build_cloudevent, stable_event_id

__all__ = ["CONTENT_TYPE", "EVENT_TYPES", "build_cloudevent", "event_schema", "stable_event_id"]
