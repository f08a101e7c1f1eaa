"""Knobs: injected 5xx/429/slow/truncated/expired-token faults, publish-now, reset, request log."""

from __future__ import annotations

import time

import httpx
import pytest

from daemon.sandbox.ebox import serve_sandbox
from daemon.sandbox.ebox.knobs import KnobError, parse_fault_spec

from .specvalidate import validating_hook


def test_error_fault_rate_one_with_count(sandbox, http, caller) -> None:
    rule = http.post(f"{sandbox.admin_url}/faults", json={"kind": "error", "status": 502, "count": 2}).json()
    assert rule["kind"] == "error"
    first, second, third = (caller.get("/ebox") for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (502, 502, 200)
    assert first.json()["code"] == "INTERNAL_ERROR"
    assert http.get(f"{sandbox.admin_url}/faults").json()[0]["fired"] == 2


def test_503_with_retry_after_and_429(sandbox, caller) -> None:
    sandbox.add_fault("error", status=503, retry_after=7, count=1)
    response = caller.get("/ebox/messages")
    assert (response.status_code, response.headers["retry-after"]) == (503, "7")
    sandbox.add_fault("throttle", retry_after=3, path="/ebox/messages")
    throttled = caller.get("/ebox/messages")
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "3")
    assert throttled.json()["code"] == "TOO_MANY_REQUESTS"
    assert caller.get("/ebox").status_code == 200  # the rule only targets /ebox/messages


def test_faults_on_token_endpoint_use_oauth_errors(sandbox, make_caller) -> None:
    caller = make_caller(0, token=False)
    sandbox.add_fault("error", status=500, path="/oauth/", count=1)
    failed = caller.fetch_token()
    assert (failed.status_code, failed.json()["error"]) == (500, "server_error")
    assert caller.fetch_token().status_code == 200


def test_slow_responses(sandbox, caller) -> None:
    sandbox.add_fault("slow", delay=0.4, path="/ebox")
    started = time.monotonic()
    assert caller.get("/ebox").status_code == 200
    assert time.monotonic() - started >= 0.4
    with pytest.raises(httpx.ReadTimeout):
        caller.http.get(caller.url("/ebox"), headers=caller.headers, timeout=0.1)


def test_truncated_download(sandbox, caller) -> None:
    message = caller.messages(pageSize=1)["items"][0]
    href = message["attachments"]["items"][0]["contentHref"]
    sandbox.add_fault("truncate", count=1)
    with pytest.raises(httpx.RemoteProtocolError):
        caller.http.get(href, headers=caller.headers)
    complete = caller.http.get(href, headers=caller.headers)
    assert complete.status_code == 200
    assert int(complete.headers["content-length"]) == len(complete.content)
    log = sandbox.requests()
    assert [entry["truncated"] for entry in log[-2:]] == [True, False]


def test_expired_token_fault(sandbox, http, caller) -> None:
    http.post(f"{sandbox.admin_url}/faults", json={"kind": "expired_token", "count": 1})
    response = caller.get("/ebox")
    assert (response.status_code, response.json()["code"]) == (401, "TOKEN_EXPIRED")
    assert caller.get("/ebox").status_code == 200
    assert http.post(f"{sandbox.admin_url}/tokens/expire", json={}).json()["expired"] == 1
    assert caller.get("/ebox").status_code == 401
    assert caller.fetch_token().status_code == 200
    assert caller.get("/ebox").status_code == 200


def test_fractional_rates_are_reproducible(rsa_key) -> None:
    def outcomes(seed: int) -> list[int]:
        with serve_sandbox(seed=seed) as box, httpx.Client(event_hooks={"response": [validating_hook]}) as client:
            box.add_fault("error", rate=0.5)
            return [client.get(box.registry_url() + "/ebox").status_code for _ in range(20)]

    first = outcomes(5)
    assert first == outcomes(5)
    assert set(first) == {401, 503}  # some faulted, some reached the (unauthenticated) handler


def test_bad_fault_requests(sandbox, http) -> None:
    assert http.post(f"{sandbox.admin_url}/faults", json={"kind": "meteor"}).status_code == 400
    assert http.post(f"{sandbox.admin_url}/faults", json={"kind": "error", "status": 404}).status_code == 400
    assert http.post(f"{sandbox.admin_url}/faults", json={"kind": "error", "rate": 2}).status_code == 400
    assert http.delete(f"{sandbox.admin_url}/faults").json() == []


def test_publish_now_and_reset(sandbox, http, caller) -> None:
    before = caller.get("/ebox").json()
    published = http.post(f"{sandbox.admin_url}/messages",
                          json={"enterpriseNumber": caller.enterprise, "kind": "contributions", "language": "fr"})
    assert published.status_code == 201
    letter = published.json()
    assert letter["payment"]["amountText"].endswith(" EUR")
    assert letter["language"] == "fr"
    newest = caller.messages(pageSize=1)["items"][0]
    assert newest["messageId"] == letter["messageId"]
    assert newest["readStatus"] is False
    assert newest["subject"]["fr"].startswith("Avis de paiement")
    after = caller.get("/ebox").json()
    assert after["numberOfMessages"] == before["numberOfMessages"] + 1
    assert after["numberOfUnreadMessages"] == before["numberOfUnreadMessages"] + 1
    catalogue = http.get(f"{sandbox.admin_url}/catalogue").json()
    assert catalogue[-1]["messageId"] == letter["messageId"]
    assert http.post(f"{sandbox.admin_url}/messages", json={"enterpriseNumber": "1"}).status_code == 400
    assert http.post(f"{sandbox.admin_url}/reset", json={}).json() == {"reset": True}
    assert caller.get("/ebox").status_code == 401  # tokens revoked by reset, clients kept
    assert caller.fetch_token().status_code == 200
    assert caller.get("/ebox").json() == before


def test_publish_for_unseeded_enterprise(sandbox, make_caller) -> None:
    caller = make_caller(enterprise="0417497106")
    letter = sandbox.publish("0417497106", kind="attestation", language="de")
    assert caller.messages()["items"][0]["messageId"] == letter.message_id


def test_request_log_and_overview(sandbox, http, caller) -> None:
    caller.get("/ebox")
    caller.get("/ebox/messages", params={"pageSize": 2})
    log = http.get(f"{sandbox.admin_url}/requests").json()
    assert [entry["path"].rsplit("/", 1)[-1] for entry in log[-2:]] == ["ebox", "messages"]
    assert log[-1]["clientId"] == caller.client_id
    assert log[-1]["query"] == {"pageSize": "2"}
    since = http.get(f"{sandbox.admin_url}/requests", params={"since": log[-1]["seq"]}).json()
    assert since == []
    overview = http.get(sandbox.admin_url).json()
    assert overview["tokenUrl"] == sandbox.token_url
    assert len(overview["enterprises"]) == 3
    settings = http.post(f"{sandbox.admin_url}/settings", json={"tokenLifetime": 30}).json()
    assert settings["tokenLifetime"] == 30
    assert caller.fetch_token().json()["expires_in"] == 30
    assert http.post(f"{sandbox.admin_url}/settings", json={"nope": 1}).status_code == 400
    assert http.post(f"{sandbox.admin_url}/clock", json={"advanceSeconds": 31}).status_code == 200
    assert caller.get("/ebox").status_code == 401


def test_wrong_content_type_download(sandbox, caller) -> None:
    attachment = caller.messages(pageSize=1)["items"][0]["attachments"]["items"][0]
    sandbox.add_fault("wrong_content_type", count=1)
    with httpx.Client() as raw:  # this response breaks the contract on purpose: no validating hook
        response = raw.get(attachment["contentHref"], headers=caller.headers)
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert caller.http.get(attachment["contentHref"], headers=caller.headers).status_code == 200


def test_corrupt_download_has_wrong_digest(sandbox, caller) -> None:
    attachment = caller.messages(pageSize=1)["items"][0]["attachments"]["items"][0]
    sandbox.add_fault("corrupt", count=1)
    corrupted = caller.http.get(attachment["contentHref"], headers=caller.headers).content
    intact = caller.http.get(attachment["contentHref"], headers=caller.headers).content
    assert len(corrupted) == len(intact)
    assert corrupted != intact


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("error:0.1:502", ("error", {"rate": 0.1, "status": 502})), ("slow:1:2.5", ("slow", {"rate": 1.0, "delay": 2.5})),
     ("throttle:1:5", ("throttle", {"rate": 1.0, "retry_after": 5})), ("truncate", ("truncate", {}))],
)
def test_parse_fault_spec(spec, expected) -> None:
    assert parse_fault_spec(spec) == expected


@pytest.mark.parametrize("spec", ["meteor:1", "error:x", "error:1:2:3"])
def test_parse_fault_spec_rejects(spec) -> None:
    with pytest.raises(KnobError):
        parse_fault_spec(spec)
