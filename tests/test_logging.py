from __future__ import annotations

import io
import json
import logging

import structlog

from daemon.logging import REDACTED, configure_logging

PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl"


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_with_secrets_redacted_at_any_depth() -> None:
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    log = structlog.get_logger("test")
    log.info("token.obtained", access_token="abc123", client_id="self_service_chaman_1",
             response={"refresh_token": "r-456", "nested": [{"password": "p"}]},
             url="amqp://guest:s3cret@host/", header=f"Bearer {JWT}", key=PEM)
    [event] = lines(stream)
    text = stream.getvalue()
    for secret in ("abc123", "r-456", "s3cret", JWT, "MIIEvQ", '"p"'):
        assert secret not in text
    assert event["event"] == "token.obtained"
    assert event["client_id"] == "self_service_chaman_1"
    assert event["access_token"] == REDACTED
    assert event["level"] == "info"
    assert "timestamp" in event


def test_stdlib_records_are_rendered_and_redacted_too() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    logging.getLogger("dramatiq.worker").warning("connection to %s lost", "amqp://u:pw@h/")
    [event] = lines(stream)
    assert event["logger"] == "dramatiq.worker"
    assert "pw@" not in event["event"]


def test_exceptions_render_without_frame_locals() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)

    def fail(private_key: str) -> None:
        raise ValueError("boom")

    try:
        fail(PEM)
    except ValueError:
        structlog.get_logger("test").exception("step.failed")
    assert "MIIEvQ" not in stream.getvalue()
    assert lines(stream)[0]["exception"][0]["exc_type"] == "ValueError"


def test_context_is_bound_and_cleared() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    structlog.contextvars.bind_contextvars(message_id="m-1", actor="poll_enterprise")
    structlog.get_logger("t").info("inside")
    structlog.contextvars.clear_contextvars()
    structlog.get_logger("t").info("outside")
    inside, outside = lines(stream)
    assert inside["message_id"] == "m-1"
    assert "message_id" not in outside


def test_console_format_is_readable() -> None:
    stream = io.StringIO()
    configure_logging("info", "console", stream=stream)
    structlog.get_logger("t").info("daemon.ready", token="t0k")
    text = stream.getvalue()
    assert "daemon.ready" in text
    assert "t0k" not in text
