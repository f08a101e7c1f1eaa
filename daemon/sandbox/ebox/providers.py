"""Federation v1.3 provider registry: ``GET /messageProviders`` and ``/messageProviders/{id}``.

Lists every sandbox DP with its base URL on this host; a DP put in maintenance shows a
``messageProviderPlannedMaintenance`` window covering now (and its registry answers 503).
"""

from __future__ import annotations

from typing import Any

from daemon.sandbox.ebox.auth import authenticate
from daemon.sandbox.ebox.errors import ApiError
from daemon.sandbox.ebox.messages import fmt_datetime
from daemon.sandbox.ebox.reference import ProviderInfo
from daemon.sandbox.ebox.state import REGISTRY_SCOPE, SandboxState
from daemon.sandbox.httpkit import Request, Response, Router, json_response

__all__ = ["FEDERATION_PATH", "FederationApi", "provider_json"]

FEDERATION_PATH = "/REST/ebox/enterprise/federation/v1"


def provider_json(state: SandboxState, provider: ProviderInfo, origin: str) -> dict[str, Any]:
    """A ``MessageProvider`` (FED13) pointing at this sandbox."""
    out: dict[str, Any] = {
        "messageProviderId": provider.provider_id,
        "messageProviderName": dict(provider.name),
        "messageProviderDescription": dict(provider.description),
        "messageProviderUrl": f"{origin}{provider.base_path}/",
        "messageProviderActivationDate": provider.activation_date,
        "messageProviderTechnicalContact": provider.contact,
        "apiSupportedVersion": provider.api_version,
        "_links": {"self": {"href": f"{origin}{FEDERATION_PATH}/messageProviders/{provider.provider_id}"}},
    }
    if provider.deactivation_date:
        out["messageProviderDeactivationDate"] = provider.deactivation_date
    window = state.maintenance.get(provider.provider_id)
    if window is not None:
        out["messageProviderPlannedMaintenance"] = [
            {"startDate": fmt_datetime(window[0]), "endDate": fmt_datetime(window[1])}]
    return out


def _missing(request: Request, status: int) -> Response:
    if status == 405:
        raise ApiError(405, "METHOD_NOT_ALLOWED", f"{request.method} not allowed on {request.path}", {"Allow": "GET"})
    raise ApiError(404, "NOT_FOUND", f"No such resource: {request.path}")


class FederationApi:
    """The provider registry endpoints."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.router = Router()
        self.router.add("GET", "/messageProviders", self._list)
        self.router.add("GET", "/messageProviders/{messageProviderId}", self._one)

    def _auth(self, request: Request) -> None:
        authenticate(self.state, request, (REGISTRY_SCOPE,), force_expired="expired_token" in request.flags,
                     consultation=False)

    def _list(self, request: Request) -> Response:
        self._auth(request)
        providers = [provider_json(self.state, p, request.base_url) for p in self.state.providers.values()]
        return json_response(200, providers)

    def _one(self, request: Request) -> Response:
        self._auth(request)
        provider = self.state.providers.get(request.params["messageProviderId"])
        if provider is None:
            raise ApiError(404, "NOT_FOUND", f"MessageProviderId not found: {request.params['messageProviderId']}")
        return json_response(200, provider_json(self.state, provider, request.base_url))

    def handle(self, request: Request, subpath: str) -> Response:
        """Route ``subpath`` (below :data:`FEDERATION_PATH`); raises :class:`ApiError`."""
        return self.router.dispatch(request, subpath, lambda status: _missing(request, status))
