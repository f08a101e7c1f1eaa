"""Authenticated requests: bearer token, retries, exactly one re-authentication on 401, error mapping."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import structlog

from ._credentials import Credential
from ._errors import (
    BadRequest,
    EboxApiError,
    Forbidden,
    MalformedResponse,
    NotFound,
    RateLimited,
    ServerError,
    StatusMessage,
    Unauthorized,
    UnsupportedMediaType,
)
from ._tokens import TokenProvider
from ._transport import RetryPolicy, parse_retry_after, send_with_retry

__all__ = ["ApiSession", "error_from_response"]

log = structlog.get_logger(__name__)

_BY_STATUS: dict[int, type[EboxApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    415: UnsupportedMediaType,
    429: RateLimited,
}


def error_from_response(response: httpx.Response, *, not_found: type[NotFound] = NotFound) -> EboxApiError:
    """Build the precise :class:`EboxApiError` for an error response (whose body has been read)."""
    status = response.status_code
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else EboxApiError)
    if status == 404:
        cls = not_found
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    status_message = StatusMessage.from_json(body)
    return cls(
        status_code=status,
        method=response.request.method,
        url=str(response.request.url.copy_with(query=None)),
        status=status_message,
        text=None if status_message else response.text[:200],
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


class ApiSession:
    """Sends requests for one credential (and optional extra headers) through a shared httpx client."""

    def __init__(
        self,
        *,
        credential: Credential,
        tokens: TokenProvider,
        http: httpx.Client,
        retry: RetryPolicy,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.credential = credential
        self.tokens = tokens
        self.http = http
        self.retry = retry
        self.headers = dict(headers or {})
        self.sleep = sleep

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
        accept: str = "application/json",
        stream: bool = False,
        not_found: type[NotFound] = NotFound,
    ) -> httpx.Response:
        """Send with auth and retries; return a 2xx response (a stream when ``stream``) or raise.

        On 401 the token is invalidated and the request re-sent once with a fresh token; a second
        401 raises :class:`Unauthorized`.
        """
        reauthenticated = False
        while True:
            token = self.tokens.get_token(self.credential)
            headers = {**self.headers, "Accept": accept, "Authorization": token.authorization}
            if content_type:
                headers["Content-Type"] = content_type

            def send(headers: dict[str, str] = headers) -> httpx.Response:
                request = self.http.build_request(method, url, params=params, content=content, headers=headers)
                return self.http.send(request, stream=stream)

            started = time.monotonic()
            response = send_with_retry(send, policy=self.retry, method=method, url=url, sleep=self.sleep)
            log.debug(
                "ebox.http.response",
                method=method,
                url=url,
                status=response.status_code,
                elapsed_ms=round((time.monotonic() - started) * 1000),
            )
            if response.status_code == 401 and not reauthenticated:
                response.close()
                log.info("ebox.http.reauthenticate", client_id=self.credential.client_id, url=url)
                self.tokens.invalidate(self.credential, token)
                reauthenticated = True
                continue
            if response.is_success:
                return response
            if stream:
                try:
                    response.read()
                finally:
                    response.close()
            raise error_from_response(response, not_found=not_found)

    def get_json(
        self, url: str, *, params: Mapping[str, str] | None = None, not_found: type[NotFound] = NotFound
    ) -> tuple[Any, httpx.Response]:
        """GET and decode JSON; a non-JSON 2xx body is a :class:`MalformedResponse`."""
        response = self.request("GET", url, params=params, not_found=not_found)
        try:
            return response.json(), response
        except ValueError as exc:  # JSONDecodeError names line and column, UnicodeDecodeError the byte
            raise MalformedResponse(
                f"GET {httpx.URL(url).path}",
                f"response body is not JSON ({response.headers.get('Content-Type')}): {exc}",
            ) from None
