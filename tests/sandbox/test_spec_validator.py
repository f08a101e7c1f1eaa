"""The contract validator itself: it must reject what the contract forbids."""

from __future__ import annotations

import jsonschema
import pytest

from .specvalidate import federation_spec, registry_spec, stats

MESSAGE = {"$ref": "#/definitions/Message"}


def _message() -> dict:
    return {"messageId": "m", "subject": {"fr": "x"}, "receiptDate": "2026-01-15T09:00:00+01:00",
            "expirationDate": "2027-01-15T09:00:00+01:00", "readStatus": False, "registeredMail": False,
            "messageTypeId": "t", "senderOrganizationId": "0206731645", "bodyMainContent": False,
            "replyAuthorized": False}


def test_valid_message_passes() -> None:
    registry_spec().validate(MESSAGE, _message())


@pytest.mark.parametrize(
    "mutation",
    [
        {"readStatus": None},  # null is not a boolean
        {"senderOrganizationId": "ONSS"},  # pattern [0-1][0-9]{9}
        {"receiptDate": "2026-01-15"},  # date-time required
        {"attachments": []},  # an object {items, totalItems}, not an array
        {"read_status": True},  # unknown field (strict mode)
        {"subject": {"en": "x"}},  # TranslatedString is nl/fr/de only
    ],
)
def test_invalid_messages_fail(mutation) -> None:
    with pytest.raises(jsonschema.ValidationError):
        registry_spec().validate(MESSAGE, {**_message(), **mutation})


def test_missing_required_field_fails() -> None:
    body = _message()
    del body["replyAuthorized"]
    with pytest.raises(jsonschema.ValidationError):
        registry_spec().validate(MESSAGE, body)


def test_federation_status_message_needs_uppercase_environment() -> None:
    fragment = {"$ref": "#/definitions/StatusMessage"}
    body = {"id": "4b9a0a4e-39c1-4f7c-8f76-0b0e3b8bde35", "code": "X", "message": "m", "environment": "simulation"}
    with pytest.raises(jsonschema.ValidationError):
        federation_spec().validate(fragment, body)
    federation_spec().validate(fragment, {**body, "environment": "SIMULATION"})


def test_hook_validated_responses(caller) -> None:
    before = stats["validated"]
    caller.get("/ebox")
    assert stats["validated"] == before + 1
