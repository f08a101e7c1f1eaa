"""Admin HTTP API under ``/_sandbox`` (loopback, unauthenticated): knobs for tests and demos.

| method | path | body / query | effect |
|---|---|---|---|
| GET | ``/_sandbox`` | | overview: URLs, providers, enterprises, settings |
| GET | ``/_sandbox/catalogue`` | | every letter with its expected payment fields |
| GET, POST | ``/_sandbox/clients`` | ``certificatePem, enterpriseNumber, scopes?, activated?, mandates?`` | |
| POST | ``/_sandbox/messages`` | ``enterpriseNumber, kind?, language?`` | publish a letter now |
| GET,POST,DELETE | ``/_sandbox/faults`` | ``kind, rate?, status?, retryAfter?, delay?, path?, count?, field?, size?``|
| POST | ``/_sandbox/providers/{id}/maintenance`` | ``enabled?, duration?`` | maintenance on/off |
| POST | ``/_sandbox/tokens/expire`` | ``clientIds?`` | expire issued tokens now |
| POST | ``/_sandbox/clock`` | ``advanceSeconds`` | move the sandbox clock |
| POST | ``/_sandbox/settings`` | ``tokenLifetime?, maxAssertionLifetime?, clockSkew?, audience?`` | tune |
| POST | ``/_sandbox/reset`` | ``clients?`` | back to the seed (clients kept unless true) |
| GET | ``/_sandbox/requests`` | ``?since=<seq>`` | request log |
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from daemon.sandbox.ebox import knobs
from daemon.sandbox.ebox.clients import RegistrationError, register_client
from daemon.sandbox.ebox.state import SandboxState
from daemon.sandbox.httpkit import Request, Response, Router, json_response

__all__ = ["ADMIN_PATH", "AdminApi"]

ADMIN_PATH = "/_sandbox"


class AdminApi:
    """Routes of the admin API; ``describe`` supplies the overview (URLs) from the server."""

    def __init__(self, state: SandboxState, describe: Callable[[Request], dict[str, Any]]) -> None:
        self.state = state
        self.describe = describe
        router = self.router = Router()
        router.add("GET", "", lambda r: json_response(200, self.describe(r)))
        router.add("GET", "/catalogue", self._catalogue)
        router.add("GET", "/clients", self._clients)
        router.add("POST", "/clients", self._register)
        router.add("POST", "/messages", self._publish)
        router.add("GET", "/faults", self._faults)
        router.add("POST", "/faults", self._add_fault)
        router.add("DELETE", "/faults", self._clear_faults)
        router.add("POST", "/providers/{providerId}/maintenance", self._maintenance)
        router.add("POST", "/tokens/expire", self._expire)
        router.add("POST", "/clock", self._clock)
        router.add("POST", "/settings", self._settings)
        router.add("POST", "/reset", self._reset)
        router.add("GET", "/requests", self._requests)

    def handle(self, request: Request, subpath: str) -> Response:
        """Route below ``/_sandbox``; bad input answers 400 ``{"error": ...}``."""
        def missing(status: int) -> Response:
            return json_response(status, {"error": f"no admin route {request.method} {subpath}"})

        try:
            return self.router.dispatch(request, subpath.rstrip("/"), missing)
        except (RegistrationError, knobs.KnobError, ValueError, TypeError, KeyError) as exc:
            return json_response(400, {"error": str(exc)})

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        if not request.body:
            return {}
        body = request.json()
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        return body

    def _catalogue(self, _: Request) -> Response:
        letters = [*self.state.catalogue.letters, *self.state.published]
        return json_response(200, [knobs.letter_summary(letter) for letter in letters])

    def _clients(self, _: Request) -> Response:
        return json_response(200, [client.summary() for client in self.state.clients.values()])

    def _register(self, request: Request) -> Response:
        body = self._body(request)
        client_id = register_client(
            self.state, body["certificatePem"], body["enterpriseNumber"], scopes=body.get("scopes"),
            activated=bool(body.get("activated", True)), mandates=body.get("mandates", ()),
            client_id=body.get("clientId"))
        return json_response(201, self.state.clients[client_id].summary())

    def _publish(self, request: Request) -> Response:
        body = self._body(request)
        letter = knobs.publish(self.state, body["enterpriseNumber"], kind=body.get("kind"),
                               language=body.get("language"))
        return json_response(201, knobs.letter_summary(letter))

    def _faults(self, _: Request) -> Response:
        return json_response(200, [rule.as_dict() for rule in self.state.faults])

    def _add_fault(self, request: Request) -> Response:
        body = self._body(request)
        rule = knobs.add_fault(
            self.state, body["kind"], rate=float(body.get("rate", 1.0)), status=body.get("status"),
            retry_after=body.get("retryAfter"), delay=float(body.get("delay", 0.0)), path=body.get("path", ""),
            count=body.get("count"), field=body.get("field", ""), size=int(body.get("size", 0)))
        return json_response(201, rule.as_dict())

    def _clear_faults(self, _: Request) -> Response:
        knobs.clear_faults(self.state)
        return json_response(200, [])

    def _maintenance(self, request: Request) -> Response:
        body = self._body(request)
        knobs.set_maintenance(self.state, request.params["providerId"], bool(body.get("enabled", True)),
                              duration=int(body.get("duration", 3600)))
        return json_response(200, {"providerId": request.params["providerId"],
                                   "maintenance": request.params["providerId"] in self.state.maintenance})

    def _expire(self, request: Request) -> Response:
        body = self._body(request)
        return json_response(200, {"expired": knobs.expire_tokens(self.state, body.get("clientIds"))})

    def _clock(self, request: Request) -> Response:
        knobs.advance_clock(self.state, float(self._body(request)["advanceSeconds"]))
        return json_response(200, {"now": self.state.now().isoformat()})

    def _settings(self, request: Request) -> Response:
        body = self._body(request)
        settings = self.state.settings
        names = {"tokenLifetime": "token_lifetime", "maxAssertionLifetime": "max_assertion_lifetime",
                 "clockSkew": "clock_skew", "audience": "audience"}
        unknown = set(body) - set(names)
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        for key, attribute in names.items():
            if key in body:
                value = body[key]
                setattr(settings, attribute, value if attribute == "audience" else int(value))
        return json_response(200, {key: getattr(settings, attribute) for key, attribute in names.items()})

    def _reset(self, request: Request) -> Response:
        self.state.reset(clients=bool(self._body(request).get("clients", False)))
        return json_response(200, {"reset": True})

    def _requests(self, request: Request) -> Response:
        since = int((request.query.get("since") or ["0"])[0])
        with self.state.lock:
            entries = [entry for entry in self.state.requests if entry["seq"] > since]
        return json_response(200, entries)
