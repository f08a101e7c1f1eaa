"""Token endpoint: private_key_jwt client assertions, RFC 6749 errors, scopes, expiry."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from daemon.sandbox.ebox import DOC_CONSUMER_SCOPE, REGISTRY_SCOPE, serve_sandbox
from daemon.sandbox.ebox.state import SandboxState
from daemon.sandbox.ebox.token import TokenError, _remember_jti

from .conftest import ASSERTION_TYPE, make_assertion, make_certificate, token_form


def _post(http: httpx.Client, sandbox, assertion: str, **extra: str) -> httpx.Response:
    return http.post(sandbox.token_url, data=token_form(assertion, **extra))


def test_happy_path_issues_opaque_bearer_token(sandbox, http, make_caller) -> None:
    caller = make_caller(0, token=False)
    assert re.fullmatch(r"self_service_chaman_\d{6}_[a-z0-9]{10}", caller.client_id)
    response = caller.fetch_token()
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert set(body["scope"].split()) == {DOC_CONSUMER_SCOPE, REGISTRY_SCOPE}
    assert response.headers["cache-control"] == "no-store"
    assert body["access_token"].count(".") == 0  # opaque, not a JWT
    assert caller.get("/ebox").status_code == 200


class NOW_PLUS:  # noqa: N801 - reads as a value in the parameter table
    """A claim time relative to the moment the test runs."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds

    def resolve(self) -> int:
        return int(datetime.now(UTC).timestamp()) + self.seconds

    def __repr__(self) -> str:
        return f"now{self.seconds:+d}s"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"aud": "https://services.socialsecurity.be/REST/oauth/v5/token"}, "aud must be"),
        ({"exp": NOW_PLUS(-600)}, "expired"),
        ({"exp": NOW_PLUS(3600)}, "too far in the future"),
        ({"iat": NOW_PLUS(600)}, "iat is in the future"),
        ({"jti": None}, "'jti'"),
        ({"iat": None}, "'iat'"),
        ({"sub": "someone_else"}, "iss"),
    ],
)
def test_forged_claims_are_refused(sandbox, http, make_caller, rsa_key, overrides, fragment) -> None:
    # Times are resolved now, not when the module was collected (minutes earlier in a long run).
    overrides = {k: (v.resolve() if isinstance(v, NOW_PLUS) else v) for k, v in overrides.items()}
    caller = make_caller(0, token=False)
    response = _post(http, sandbox, make_assertion(rsa_key, caller.client_id, sandbox.token_url, **overrides))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert fragment in response.json()["error_description"]


def test_wrong_key_is_refused(sandbox, http, make_caller, other_key) -> None:
    caller = make_caller(0, token=False)
    response = _post(http, sandbox, make_assertion(other_key, caller.client_id, sandbox.token_url))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "signature does not verify" in response.json()["error_description"]


def test_unknown_client_is_refused(sandbox, http, rsa_key) -> None:
    response = _post(http, sandbox, make_assertion(rsa_key, "self_service_chaman_1_nobody", sandbox.token_url))
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client", "error_description": response.json()["error_description"]}
    assert "unknown client_id" in response.json()["error_description"]


def test_replayed_jti_is_refused(sandbox, http, make_caller, rsa_key) -> None:
    caller = make_caller(0, token=False)
    assertion = make_assertion(rsa_key, caller.client_id, sandbox.token_url)
    assert _post(http, sandbox, assertion).status_code == 200
    again = _post(http, sandbox, assertion)
    assert again.status_code == 401
    assert "replay" in again.json()["error_description"]


def test_hs256_and_garbage_assertions_are_refused(sandbox, http, make_caller) -> None:
    caller = make_caller(0, token=False)
    forged = jwt.encode({"iss": caller.client_id, "sub": caller.client_id, "aud": sandbox.token_url},
                        "a-shared-secret-that-is-long-enough-for-hs256", algorithm="HS256")
    response = _post(http, sandbox, forged)
    assert response.status_code == 401
    assert "RS256" in response.json()["error_description"]
    response = _post(http, sandbox, "not-a-jwt")
    assert response.status_code == 401
    assert "well-formed" in response.json()["error_description"]


def test_expired_certificate_is_refused(sandbox, http, rsa_key) -> None:
    cbe = sandbox.catalogue.enterprises[0].number
    pem = make_certificate(rsa_key, cbe, days=10, start_days_ago=20)
    client_id = sandbox.register_client(pem, cbe)
    response = _post(http, sandbox, make_assertion(rsa_key, client_id, sandbox.token_url))
    assert response.status_code == 401
    assert "certificate expired" in response.json()["error_description"]


def test_request_shape_errors(sandbox, http, make_caller, rsa_key) -> None:
    caller = make_caller(0, token=False)
    assertion = make_assertion(rsa_key, caller.client_id, sandbox.token_url)
    wrong_grant = http.post(sandbox.token_url, data={**token_form(assertion), "grant_type": "password"})
    assert (wrong_grant.status_code, wrong_grant.json()["error"]) == (400, "unsupported_grant_type")
    wrong_type = http.post(sandbox.token_url, data={**token_form(assertion), "client_assertion_type": "x"})
    assert (wrong_type.status_code, wrong_type.json()["error"]) == (400, "invalid_request")
    missing = http.post(sandbox.token_url, data={"grant_type": "client_credentials",
                                                 "client_assertion_type": ASSERTION_TYPE})
    assert missing.json()["error"] == "invalid_request"
    as_json = http.post(sandbox.token_url, json=token_form(assertion))
    assert as_json.json()["error"] == "invalid_request"


def test_scope_narrowing_and_invalid_scope(sandbox, http, make_caller) -> None:
    caller = make_caller(0, token=False)
    narrowed = caller.fetch_token(scope=REGISTRY_SCOPE)
    assert narrowed.json()["scope"] == REGISTRY_SCOPE
    response = caller.get("/ebox")
    assert response.status_code == 403
    assert response.json()["code"] == "MISSING_SCOPE"
    assert "insufficient_scope" in response.headers["www-authenticate"]
    refused = caller.fetch_token(scope="scope:not:granted")
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_scope")


def test_client_without_doc_consumer_scope_gets_403(make_caller) -> None:
    caller = make_caller(0, scopes=[REGISTRY_SCOPE])
    response = caller.get("/ebox/messages")
    assert response.status_code == 403
    assert response.json()["code"] == "MISSING_SCOPE"
    assert DOC_CONSUMER_SCOPE in response.json()["message"]


def test_not_activated_ebox_gets_403(make_caller) -> None:
    caller = make_caller(0, activated=False)
    response = caller.get("/ebox")
    assert response.status_code == 403
    assert response.json()["code"] == "DOCCONSUMER_NOT_ACTIVATED"


def test_token_expiry_and_bad_tokens(sandbox, caller) -> None:
    assert caller.get("/ebox").status_code == 200
    sandbox.advance_clock(601)
    expired = caller.get("/ebox")
    assert expired.status_code == 401
    assert expired.json()["code"] == "TOKEN_EXPIRED"
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    caller.token = "garbage"
    assert caller.get("/ebox").json()["code"] == "INVALID_TOKEN"
    missing = caller.http.get(caller.url("/ebox"))
    assert missing.status_code == 401


def test_configurable_token_lifetime(http, rsa_key) -> None:
    with serve_sandbox(token_lifetime=5) as short:
        cbe = short.catalogue.enterprises[1].number
        client_id = short.register_client(make_certificate(rsa_key, cbe), cbe)
        response = http.post(short.token_url, data=token_form(make_assertion(rsa_key, client_id, short.token_url)))
        assert response.json()["expires_in"] == 5


def test_admin_registration_endpoint(sandbox, http, rsa_key) -> None:
    cbe = sandbox.catalogue.enterprises[2].number
    pem = make_certificate(rsa_key, cbe).decode()
    created = http.post(f"{sandbox.admin_url}/clients",
                        json={"certificatePem": pem, "enterpriseNumber": cbe, "activated": False})
    assert created.status_code == 201
    assert created.json()["clientId"].startswith("self_service_chaman_")
    assert created.json()["activated"] is False
    listed = http.get(f"{sandbox.admin_url}/clients").json()
    assert [c["clientId"] for c in listed] == [created.json()["clientId"]]
    bad_cbe = http.post(f"{sandbox.admin_url}/clients", json={"certificatePem": pem, "enterpriseNumber": "0123456789"})
    assert bad_cbe.status_code == 400
    bad_pem = http.post(f"{sandbox.admin_url}/clients", json={"certificatePem": "nope", "enterpriseNumber": cbe})
    assert bad_pem.status_code == 400


def test_used_jtis_are_forgotten_oldest_first_once_expired() -> None:
    state = SandboxState(enterprises=1, letters=0)
    now = state.now()
    for index, lifetime in enumerate((10, 200, 10, 10)):
        _remember_jti(state, {"jti": f"j{index}", "exp": now.timestamp() + lifetime}, now)
    with pytest.raises(TokenError, match="replay"):
        _remember_jti(state, {"jti": "j0", "exp": now.timestamp() + 10}, now)
    later = now + timedelta(seconds=100)  # j0, j2, j3 expired (30 s skew), j1 still valid
    _remember_jti(state, {"jti": "j4", "exp": later.timestamp() + 10}, later)
    assert list(state.used_jti) == ["j1", "j2", "j3", "j4"]  # stops at the first one still valid
    _remember_jti(state, {"jti": "j5", "exp": later.timestamp() + 10}, later + timedelta(seconds=200))
    assert list(state.used_jti) == ["j5"]
