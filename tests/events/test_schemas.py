from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest

from daemon.events import EVENT_TYPES, build_cloudevent, event_schema, stable_event_id
from daemon.events.catalogue import SCHEMA_DIR

SAMPLES = {
    "be.eboxd.message.received": {"enterprise_number": "0403170701", "provider_id": "nsso", "message_id": "m1",
                                  "subject": "Avis", "sender": "ONSS", "message_type": None,
                                  "published_at": "2026-01-02T03:04:05Z", "registered_mail": False},
    "be.eboxd.document.stored": {"enterprise_number": "0403170701", "message_id": "m1", "document_id": 7,
                                 "attachment_id": "a1", "file_name": "avis.pdf", "media_type": "application/pdf",
                                 "language": "fr", "size": 1234, "sha256": "a" * 64},
    "be.eboxd.payment.requested": {"enterprise_number": "0403170701", "payment_request_id": 3, "message_id": "m1",
                                   "document_id": 7, "amount": "1234.56", "currency": "EUR",
                                   "iban": "BE68539007547034", "bic": "GKCCBEBB", "reference": "123456789002",
                                   "reference_kind": "ogm", "due_date": "2026-02-01", "beneficiary_name": "ONSS",
                                   "needs_review": False,
                                   "sources": {"amount": {"source": "pdf", "confidence": 0.9}}},
    "be.eboxd.payment.matched": {"enterprise_number": "0403170701", "payment_request_id": 3, "transaction_id": 9,
                                 "amount": "1234.56", "reference": "123456789002", "matched_by": "reference",
                                 "source": "coda"},
    "be.eboxd.payment.due_soon": {"enterprise_number": "0403170701", "payment_request_id": 3, "document_id": 7,
                                  "amount": "10.00", "currency": "EUR", "reference": "123456789002",
                                  "reference_kind": "ogm", "due_date": "2026-02-01", "status": "open",
                                  "days_left": 3},
    "be.eboxd.payment.overdue": {"enterprise_number": "0403170701", "payment_request_id": 3, "document_id": None,
                                 "amount": None, "currency": "EUR", "reference": None, "reference_kind": None,
                                 "due_date": "2026-02-01", "status": "review", "days_overdue": 1},
    "be.eboxd.export.completed": {"enterprise_number": "0403170701", "document_id": 7, "exporter": "zip",
                                  "target": "/srv/bundles", "receipt": {"path": "x.zip"}},
    "be.eboxd.export.failed": {"enterprise_number": "0403170701", "document_id": 7, "exporter": "exact",
                               "target": "division 1", "error": "rate limited", "attempts": 10},
}


def envelope(event_type: str, data: dict) -> dict:
    return build_cloudevent(event_type, subject="0403170701", data=data, event_id=stable_event_id("k"),
                            time=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))


def validate(event: dict) -> None:
    jsonschema.validate(event, event_schema(event["type"]), format_checker=jsonschema.FormatChecker())


def test_every_event_type_has_a_schema_file_and_nothing_else_does() -> None:
    assert {p.name.removesuffix(".json") for p in SCHEMA_DIR.glob("*.json")} == set(EVENT_TYPES)
    assert set(SAMPLES) == set(EVENT_TYPES)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_schema_is_valid_and_accepts_a_sample(event_type: str) -> None:
    jsonschema.Draft202012Validator.check_schema(event_schema(event_type))
    validate(envelope(event_type, SAMPLES[event_type]))


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_schema_refuses_missing_and_unknown_data_fields(event_type: str) -> None:
    data = dict(SAMPLES[event_type])
    data.pop("enterprise_number")
    with pytest.raises(jsonschema.ValidationError):
        validate(envelope(event_type, data))
    with pytest.raises(jsonschema.ValidationError):
        validate(envelope(event_type, {**SAMPLES[event_type], "surprise": 1}))


def test_envelope_refuses_unknown_type_and_naive_time() -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        build_cloudevent("be.eboxd.nope", subject="0403170701", data={}, event_id="x", time=dt.datetime.now(dt.UTC))
    with pytest.raises(ValueError, match="timezone-aware"):
        build_cloudevent("be.eboxd.export.failed", subject="0", data={}, event_id="x", time=dt.datetime(2026, 1, 1))


def test_event_ids_are_stable_per_idempotency_key() -> None:
    assert stable_event_id("a:1") == stable_event_id("a:1") != stable_event_id("a:2")


def test_docs_list_every_event_type() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text(encoding="utf-8")
    for event_type in EVENT_TYPES:
        assert f"`{event_type}`" in docs
    json.dumps(SAMPLES)  # samples stay JSON
