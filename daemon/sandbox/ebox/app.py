"""The e-Box sandbox as one HTTP app: dispatch by path prefix, faults, request log.

Paths are the production ones, so a client only changes the host:

- ``POST /REST/oauth/v5/token``
- ``/REST/ebox/enterprise/federation/v1/messageProviders[/{id}]``
- each provider's Message Registry under its base path (NSSO: ``/REST/ebox/enterprise/messageRegistry/v2``)
- ``/_sandbox/**`` admin knobs (never faulted, never logged)
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from daemon.sandbox.ebox import faults
from daemon.sandbox.ebox.admin import ADMIN_PATH, AdminApi
from daemon.sandbox.ebox.errors import ApiError, error_response
from daemon.sandbox.ebox.providers import FEDERATION_PATH, FederationApi
from daemon.sandbox.ebox.registry import RegistryApi
from daemon.sandbox.ebox.state import SandboxState
from daemon.sandbox.ebox.token import TOKEN_PATH, handle_token
from daemon.sandbox.httpkit import Request, Response, json_response

__all__ = ["EboxApp"]


class EboxApp:
    """Callable app for :func:`daemon.sandbox.httpkit.start_server`."""

    def __init__(self, state: SandboxState, describe: Callable[[Request], dict[str, Any]]) -> None:
        self.state = state
        self.admin = AdminApi(state, describe)
        self.federation = FederationApi(state)
        self.registries = sorted(
            ((p.base_path, RegistryApi(state, p)) for p in state.providers.values() if p.served),
            key=lambda item: len(item[0]), reverse=True,
        )

    def __call__(self, request: Request) -> Response:
        if request.path == ADMIN_PATH or request.path.startswith(ADMIN_PATH + "/"):
            return self.admin.handle(request, request.path[len(ADMIN_PATH):])
        started = time.monotonic()
        triggered = faults.before(self.state, request)
        if triggered.respond is not None:
            response = self._fault_response(request, triggered.respond.status, triggered.respond.retry_after)
        else:
            if triggered.expired_token:
                request.flags.add("expired_token")
            response = self._safe_route(request)
        response = faults.after(triggered, response)
        self._log(request, response, started, triggered.fired)
        return response

    def _safe_route(self, request: Request) -> Response:
        try:
            return self._route(request)
        except Exception as exc:  # a sandbox bug must still answer, not drop the connection
            traceback.print_exc(file=sys.stderr)
            error = ApiError(500, "INTERNAL_ERROR", f"sandbox error: {exc!r}")
            return error_response(error, self.state.settings.environment)

    def _route(self, request: Request) -> Response:
        path = request.path
        environment = self.state.settings.environment
        if path == TOKEN_PATH:
            return self._token(request)
        if path.startswith(FEDERATION_PATH + "/"):
            try:
                return self.federation.handle(request, path[len(FEDERATION_PATH):])
            except ApiError as error:
                return error_response(error, environment, federation=True)
        for base, api in self.registries:
            if path == base or path.startswith(base + "/"):
                try:
                    self._check_maintenance(api.provider.provider_id)
                    return api.handle(request, path[len(base):])
                except ApiError as error:
                    return error_response(error, environment)
        return error_response(ApiError(404, "NOT_FOUND", f"No such resource: {path}"), environment)

    def _token(self, request: Request) -> Response:
        if request.method != "POST":
            return json_response(405, {"error": "invalid_request", "error_description": "use POST"},
                                 {"Allow": "POST"})
        return handle_token(self.state, request)

    def _check_maintenance(self, provider_id: str) -> None:
        window = self.state.maintenance_window(provider_id)
        if window is not None:
            retry = max(1, int((window[1] - self.state.now()).total_seconds()))
            raise ApiError(503, "SERVICE_UNAVAILABLE", f"Provider {provider_id} is in planned maintenance",
                           {"Retry-After": str(retry)})

    def _fault_response(self, request: Request, status: int, retry_after: int | None) -> Response:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        if request.path == TOKEN_PATH:
            error = "temporarily_unavailable" if status in (429, 503) else "server_error"
            return json_response(status, {"error": error, "error_description": f"injected fault {status}"}, headers)
        code = "TOO_MANY_REQUESTS" if status == 429 else "SERVICE_UNAVAILABLE" if status == 503 else "INTERNAL_ERROR"
        error_ = ApiError(status, code, f"Injected fault: HTTP {status}", headers)
        return error_response(error_, self.state.settings.environment,
                              federation=request.path.startswith(FEDERATION_PATH))

    def _log(self, request: Request, response: Response, started: float, fired: list[int]) -> None:
        token = (request.header("Authorization") or "").partition(" ")[2].strip()
        with self.state.lock:
            issued = self.state.tokens.get(token)
        self.state.log_request({
            "time": self.state.now().isoformat(),
            "method": request.method,
            "path": request.path,
            "query": {key: values[-1] for key, values in request.query.items()},
            "status": response.status,
            "clientId": issued.client_id if issued else None,
            "onBehalfOf": request.header("On-Behalf-Of-Enterprise-Number"),
            "faults": fired,
            "truncated": response.truncate_to is not None,
            "durationMs": round((time.monotonic() - started) * 1000, 2),
        })
