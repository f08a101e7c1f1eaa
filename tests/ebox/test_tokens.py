from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import jwt
import pytest
from structlog.testing import capture_logs

from daemon import ebox

from .conftest import TOKEN_URL, FakeEbox


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tokens(environment, http, clock, sleeps):
    return ebox.TokenProvider(environment, http_client=http, clock=clock, sleep=sleeps.append)


def decode(assertion: str, credential: ebox.Credential, audience: str) -> dict:
    return jwt.decode(
        assertion,
        credential.private_key.public_key(),
        algorithms=["RS256"],
        audience=audience,
        options={"verify_exp": False, "verify_iat": False},
    )


def test_client_assertion_claims(credential):
    assertion = ebox.build_client_assertion(credential, TOKEN_URL)
    header = jwt.get_unverified_header(assertion)
    assert header["alg"] == "RS256"
    assert header["typ"] == "JWT"
    assert "kid" not in header
    claims = decode(assertion, credential, TOKEN_URL)
    assert claims["iss"] == claims["sub"] == credential.client_id
    assert claims["aud"] == TOKEN_URL
    assert claims["exp"] - claims["iat"] == 120
    assert abs(claims["iat"] - time.time()) < 5
    other = decode(ebox.build_client_assertion(credential, TOKEN_URL), credential, TOKEN_URL)
    assert other["jti"] != claims["jti"]
    with pytest.raises(ValueError, match="lifetime"):
        ebox.build_client_assertion(credential, TOKEN_URL, lifetime=600)


def test_token_request_form(tokens, fake: FakeEbox, credential, clock):
    token = tokens.get_token(credential)
    assert token.value == "tok-1"
    assert token.authorization == "Bearer tok-1"
    (request,) = fake.requests
    assert request.method == "POST"
    assert str(request.url) == TOKEN_URL
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = fake.token_requests[0]
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert "scope" not in form
    claims = decode(form["client_assertion"], credential, TOKEN_URL)
    assert claims["iat"] == int(clock.now)
    assert claims["exp"] == int(clock.now) + 120


def test_audience_override_and_scope(environment, http, fake, credential):
    env = ebox.resolve_environment("sandbox", base_url="http://ebox.test", audience="urn:legacy:aud")
    provider = ebox.TokenProvider(env, http_client=http, scope=ebox.DOCCONSUMER_SCOPE)
    provider.get_token(credential)
    form = fake.token_requests[0]
    assert decode(form["client_assertion"], credential, "urn:legacy:aud")["aud"] == "urn:legacy:aud"
    assert form["scope"] == ebox.DOCCONSUMER_SCOPE


def test_token_is_cached_until_sixty_seconds_before_expiry(tokens, fake, credential, clock):
    first = tokens.get_token(credential)
    clock.now += 539
    assert tokens.get_token(credential) is first
    clock.now += 1  # 540 s = 600 - 60
    second = tokens.get_token(credential)
    assert second.value == "tok-2"
    assert len(fake.token_requests) == 2
    assert "tok-" not in repr(second)


def test_short_lived_tokens_refresh_at_half_life(tokens, fake, credential, clock):
    fake.expires_in = 10
    tokens.get_token(credential)
    clock.now += 4
    assert tokens.get_token(credential).value == "tok-1"
    clock.now += 1
    assert tokens.get_token(credential).value == "tok-2"


def test_cache_is_per_credential(tokens, fake, credential, private_key):
    other = ebox.Credential("another-client", private_key)
    assert tokens.get_token(credential).value == "tok-1"
    assert tokens.get_token(other).value == "tok-2"
    assert tokens.get_token(credential).value == "tok-1"
    assert {decode(f["client_assertion"], credential, TOKEN_URL)["iss"] for f in fake.token_requests} == {
        credential.client_id,
        "another-client",
    }


def test_invalidate_only_drops_the_stale_token(tokens, credential):
    stale = tokens.get_token(credential)
    tokens.invalidate(credential, stale)
    fresh = tokens.get_token(credential)
    assert fresh.value == "tok-2"
    tokens.invalidate(credential, stale)  # another thread's late 401: keep the fresh token
    assert tokens.get_token(credential) is fresh
    tokens.invalidate(credential)
    assert tokens.get_token(credential).value == "tok-3"


def test_eight_concurrent_callers_share_one_refresh(environment, fake, credential):
    gate = threading.Event()
    fake.token_delay = gate
    with httpx.Client(transport=httpx.MockTransport(fake.handle)) as http:
        provider = ebox.TokenProvider(environment, http_client=http)
        barrier = threading.Barrier(8)

        def call() -> str:
            barrier.wait()
            return provider.get_token(credential).value

        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(call) for _ in range(8)]
            time.sleep(0.2)  # every thread is now inside get_token, one of them in the request
            gate.set()
            values = {f.result(timeout=10) for f in futures}
    assert values == {"tok-1"}
    assert len(fake.token_requests) == 1
    assert provider.refresh_count == 1


def _refusal(status: int, error: str | None, description: str | None = None) -> httpx.Response:
    body = {}
    if error:
        body["error"] = error
    if description:
        body["error_description"] = description
    return httpx.Response(status, json=body)


@pytest.mark.parametrize(
    ("response", "exc_type", "text"),
    [
        (_refusal(401, "invalid_client", "Unknown client self_service_x"), ebox.UnknownClient, "unknown"),
        (_refusal(400, "invalid_client", "client not found"), ebox.UnknownClient, "not found"),
        (_refusal(401, "invalid_client", "signature verification failed"), ebox.InvalidClientAssertion, "signature"),
        (_refusal(400, "invalid_client", "jti already used"), ebox.InvalidClientAssertion, "jti"),
        (_refusal(400, "invalid_scope", "scope:foo is not granted"), ebox.InvalidScope, "scope:foo"),
        (_refusal(400, "unauthorized_client", None), ebox.UnauthorizedClient, "not authorized"),
        (_refusal(400, "invalid_request", "missing grant_type"), ebox.TokenEndpointError, "invalid_request"),
        (httpx.Response(400, text="<html>oops</html>"), ebox.TokenEndpointError, "HTTP 400"),
        (httpx.Response(200, text="not json"), ebox.TokenEndpointError, "non-JSON"),
        (httpx.Response(200, json={"token_type": "Bearer"}), ebox.TokenEndpointError, "access_token"),
        (httpx.Response(200, json={"access_token": "x", "token_type": "mac"}), ebox.TokenEndpointError, "mac"),
        (httpx.Response(200, json={"access_token": "x", "expires_in": -1}), ebox.TokenEndpointError, "expires_in"),
    ],
)
def test_token_errors_are_precise(tokens, fake, credential, response, exc_type, text):
    fake.token_responses = [response]
    with pytest.raises(exc_type) as info:
        tokens.get_token(credential)
    assert text in str(info.value)
    assert info.value.client_id == credential.client_id
    assert type(info.value) is exc_type
    assert len(fake.token_requests) == 1  # 4xx are not retried


def test_invalid_client_assertion_reason(tokens, fake, credential):
    fake.token_responses = [_refusal(401, "invalid_client", "aud claim does not match the token endpoint")]
    with pytest.raises(ebox.InvalidClientAssertion) as info:
        tokens.get_token(credential)
    assert info.value.reason == "aud claim does not match the token endpoint"
    assert info.value.error == "invalid_client"
    assert info.value.status_code == 401


def test_token_endpoint_5xx_is_retried_with_a_fresh_assertion(tokens, fake, credential, sleeps):
    fake.token_responses = [httpx.Response(503), httpx.Response(502), _ok_token()]
    assert tokens.get_token(credential).value == "fresh"
    jtis = [decode(f["client_assertion"], credential, TOKEN_URL)["jti"] for f in fake.token_requests]
    assert len(jtis) == 3
    assert len(set(jtis)) == 3
    assert len(sleeps) == 2


def test_token_endpoint_down_raises_after_the_budget(tokens, fake, credential):
    fake.token_responses = [httpx.Response(500, json={"error": "server_error"})]
    with pytest.raises(ebox.TokenEndpointError) as info:
        tokens.get_token(credential)
    assert info.value.status_code == 500
    assert len(fake.token_requests) == 4


def _ok_token() -> httpx.Response:
    return httpx.Response(200, json={"access_token": "fresh", "token_type": "bearer", "expires_in": "300"})


def test_logs_never_contain_tokens_or_assertions(tokens, fake, credential):
    with capture_logs() as logs:
        tokens.get_token(credential)
        tokens.invalidate(credential)
        tokens.get_token(credential)
    assertion = fake.token_requests[0]["client_assertion"]
    rendered = repr(logs)
    assert "ebox.token.issued" in rendered
    assert "tok-1" not in rendered
    assert "tok-2" not in rendered
    assert assertion not in rendered
    assert assertion[:30] not in rendered
