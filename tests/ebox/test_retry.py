from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from daemon import ebox
from daemon.ebox._transport import parse_retry_after, send_with_retry

from .conftest import FakeEbox, message_json, status_message

URL = "http://ebox.test/x"


def scripted(*outcomes):
    """A ``send`` callable returning/raising the outcomes in order; counts calls."""
    calls = []

    def send() -> httpx.Response:
        outcome = outcomes[min(len(calls), len(outcomes) - 1)]
        calls.append(outcome)
        if isinstance(outcome, Exception):
            raise outcome
        if isinstance(outcome, int):
            return httpx.Response(outcome, request=httpx.Request("GET", URL))
        return outcome

    return send, calls


def run(send, policy=None, sleeps=None, rng=None):
    return send_with_retry(
        send,
        policy=policy or ebox.RetryPolicy(max_attempts=4, initial_delay=1.0, max_delay=8.0),
        method="GET",
        url=URL,
        sleep=(sleeps if sleeps is not None else []).append,
        rng=rng or random.Random(7),
    )


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_transient_statuses_are_retried(status):
    send, calls = scripted(status, status, 200)
    sleeps: list[float] = []
    assert run(send, sleeps=sleeps).status_code == 200
    assert len(calls) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 415, 501])
def test_other_statuses_are_returned_at_once(status):
    send, calls = scripted(status, 200)
    assert run(send).status_code == status
    assert len(calls) == 1


def test_attempts_are_bounded_and_the_last_response_returned():
    send, calls = scripted(503)
    sleeps: list[float] = []
    assert run(send, sleeps=sleeps).status_code == 503
    assert len(calls) == 4
    assert len(sleeps) == 3


def test_backoff_is_exponential_jittered_and_capped():
    policy = ebox.RetryPolicy(max_attempts=8, initial_delay=1.0, max_delay=8.0)
    send, _ = scripted(503)
    sleeps: list[float] = []
    run(send, policy=policy, sleeps=sleeps, rng=random.Random(1))
    ceilings = [1, 2, 4, 8, 8, 8, 8]
    assert len(sleeps) == 7
    for delay, ceiling in zip(sleeps, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(sleeps)) > 1


def test_retry_after_seconds_is_honoured():
    send, _ = scripted(httpx.Response(429, headers={"Retry-After": "3"}), 200)
    sleeps: list[float] = []
    assert run(send, sleeps=sleeps).status_code == 200
    assert sleeps == [3.0]


def test_retry_after_http_date_is_honoured():
    when = datetime.now(UTC) + timedelta(seconds=5)
    assert 3.5 < parse_retry_after(format_datetime(when, usegmt=True)) <= 5
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after(format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)) == 0


def test_retry_after_beyond_the_bound_stops_retrying():
    send, calls = scripted(httpx.Response(503, headers={"Retry-After": "3600"}), 200)
    sleeps: list[float] = []
    assert run(send, sleeps=sleeps).status_code == 503
    assert len(calls) == 1
    assert sleeps == []


def test_timeouts_are_retried_then_raised():
    send, calls = scripted(httpx.ReadTimeout("slow"))
    with pytest.raises(ebox.EboxTimeout) as info:
        run(send)
    assert len(calls) == 4
    assert info.value.attempts == 4
    assert info.value.url == URL
    assert isinstance(info.value, ebox.TransportError)


def test_connection_errors_are_retried_then_raised():
    send, calls = scripted(httpx.ConnectError("refused"), httpx.RemoteProtocolError("dropped"), 200)
    assert run(send).status_code == 200
    assert len(calls) == 3
    send, calls = scripted(httpx.ConnectError("refused"))
    with pytest.raises(ebox.EboxConnectionError, match="ConnectError"):
        run(send)
    assert len(calls) == 4


def test_programming_errors_are_not_retried():
    send, calls = scripted(httpx.UnsupportedProtocol("ftp://"))
    with pytest.raises(ebox.EboxConnectionError):
        run(send)
    assert len(calls) == 1


def test_policy_validation():
    with pytest.raises(ValueError, match="max_attempts"):
        ebox.RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="delays"):
        ebox.RetryPolicy(initial_delay=-1)
    one = ebox.RetryPolicy(max_attempts=1)
    send, calls = scripted(503)
    assert run(send, policy=one).status_code == 503
    assert len(calls) == 1


# --- through the client ------------------------------------------------------------------------


def test_client_retries_5xx_and_succeeds(client, fake: FakeEbox, sleeps):
    fake.route("GET", "/ebox/messages/m1", [httpx.Response(502), httpx.Response(200, json=message_json("m1"))])
    assert client.get_message("m1").message_id == "m1"
    assert len(fake.api_requests) == 2
    assert len(sleeps) == 1


def test_client_gives_up_on_persistent_5xx(client, fake, sleeps):
    fake.route("GET", "/ebox", status_message("UNAVAILABLE", "maintenance", 503))
    with pytest.raises(ebox.ServerError) as info:
        client.summary()
    assert info.value.status_code == 503
    assert info.value.code == "UNAVAILABLE"
    assert len(fake.api_requests) == 4
    assert len(sleeps) == 3


def test_client_reports_retry_after_when_it_exceeds_the_bound(client, fake, sleeps):
    fake.route("GET", "/ebox", status_message("TOO_MANY", "slow down", 429, **{"Retry-After": "120"}))
    with pytest.raises(ebox.RateLimited) as info:
        client.summary()
    assert info.value.retry_after == 120
    assert len(fake.api_requests) == 1
    assert sleeps == []


def test_client_timeouts_become_ebox_timeout(client, fake, sleeps):
    def slow(request):
        raise httpx.ReadTimeout("stalled", request=request)

    fake.route("GET", "/ebox", slow)
    with pytest.raises(ebox.EboxTimeout):
        client.summary()
    assert len(fake.api_requests) == 4


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [(400, ebox.BadRequest), (403, ebox.Forbidden), (404, ebox.NotFound), (415, ebox.UnsupportedMediaType)],
)
def test_client_errors_are_not_retried_and_carry_the_status_message(client, fake, sleeps, status, exc_type):
    fake.route("GET", "/ebox/messages/m1", status_message("SOME_CODE", "explained", status))
    with pytest.raises(exc_type) as info:
        client.get_message("m1")
    error = info.value
    assert error.status_code == status
    assert error.id == "5b1f1c4e-0000-4000-8000-000000000001"
    assert error.code == "SOME_CODE"
    assert error.server_message == "explained"
    assert "SOME_CODE" in str(error)
    assert "/ebox/messages/m1" in error.url
    assert isinstance(error, ebox.EboxApiError)
    assert len(fake.api_requests) == 1
    assert sleeps == []


def test_error_without_status_message_keeps_the_text(client, fake):
    fake.route("GET", "/ebox/messages/m1", httpx.Response(403, text="<html>Forbidden by WAF</html>"))
    with pytest.raises(ebox.Forbidden) as info:
        client.get_message("m1")
    assert info.value.status is None
    assert "Forbidden by WAF" in str(info.value)
