"""Fixtures for the e-Box client tests: one RSA key per session and an in-memory fake e-Box."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from daemon import ebox

SANDBOX = "http://ebox.test"
TOKEN_URL = SANDBOX + "/REST/oauth/v5/token"
REGISTRY = SANDBOX + "/REST/ebox/enterprise/messageRegistry/v2/"

Handler = Callable[[httpx.Request], httpx.Response]


def b64url_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def status_message(code: str, message: str, status: int, **headers: str) -> httpx.Response:
    body = {"id": "5b1f1c4e-0000-4000-8000-000000000001", "code": code, "message": message}
    return httpx.Response(status, json=body, headers=headers)


def message_json(message_id: str, **overrides: Any) -> dict[str, Any]:
    data = {
        "messageId": message_id,
        "subject": {"nl": f"Onderwerp {message_id}"},
        "receiptDate": "2026-11-20T10:00:00+01:00",
        "expirationDate": "2027-11-20T10:00:00+01:00",
        "readStatus": False,
        "visible": True,
        "registeredMail": False,
        "messageTypeId": "MT1",
        "senderOrganizationId": "0206731645",
        "bodyMainContent": False,
        "replyAuthorized": False,
        "someFutureField": {"ignored": True},
    }
    data.update(overrides)
    return data


class FakeEbox:
    """A scriptable token endpoint + Message Registry behind ``httpx.MockTransport``.

    ``routes`` maps ``(method, path)`` to a handler or to a list of responses served in order (the
    last one repeats). Every request is recorded.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[tuple[str, str], Handler | list[httpx.Response]] = {}
        self.token_requests: list[dict[str, str]] = []
        self.token_responses: list[httpx.Response] | None = None
        self.expires_in = 600
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.token_delay: threading.Event | None = None

    def route(self, method: str, path: str, handler: Handler | list[httpx.Response] | httpx.Response) -> None:
        self.routes[(method, path)] = [handler] if isinstance(handler, httpx.Response) else handler

    def json(self, path: str, body: Any, status: int = 200, **headers: str) -> None:
        self.route("GET", path, lambda _r: httpx.Response(status, json=body, headers=headers))

    @property
    def api_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path != "/REST/oauth/v5/token"]

    def issued_tokens(self) -> int:
        return sum(1 for r in self.token_requests if r)

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
        if request.url.path == "/REST/oauth/v5/token":
            return self._token(request)
        path = request.url.path.removeprefix("/REST/ebox/enterprise/messageRegistry/v2")
        key = (request.method, path)
        if key not in self.routes:
            key = (request.method, request.url.path)
        target = self.routes.get(key)
        if target is None:
            return status_message("NOT_FOUND", f"no route {request.method} {path}", 404)
        if isinstance(target, list):
            with self._lock:
                return target.pop(0) if len(target) > 1 else target[0]
        return target(request)

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        with self._lock:
            self.token_requests.append(form)
        if self.token_delay is not None:
            self.token_delay.wait(5)
        if self.token_responses:
            with self._lock:
                return self.token_responses.pop(0) if len(self.token_responses) > 1 else self.token_responses[0]
        n = next(self._counter)
        return httpx.Response(
            200, json={"access_token": f"tok-{n}", "token_type": "Bearer", "expires_in": self.expires_in}
        )


@pytest.fixture(scope="session")
def private_key():
    return ebox.generate_private_key(2048)


@pytest.fixture(scope="session")
def credential(private_key) -> ebox.Credential:
    return ebox.Credential("self_service_chaman_305369_32a2ocupdo", private_key)


@pytest.fixture
def environment() -> ebox.Environment:
    return ebox.resolve_environment("sandbox", base_url=SANDBOX)


@pytest.fixture
def fake() -> FakeEbox:
    return FakeEbox()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def http(fake: FakeEbox):
    with httpx.Client(transport=httpx.MockTransport(fake.handle)) as client:
        yield client


@pytest.fixture
def client(credential, environment, http, sleeps):
    policy = ebox.RetryPolicy(max_attempts=4, initial_delay=0.5, max_delay=10.0)
    with ebox.EboxClient(credential, environment, http_client=http, retry=policy, sleep=sleeps.append) as c:
        yield c


def dumps(data: Any) -> bytes:
    return json.dumps(data).encode()
