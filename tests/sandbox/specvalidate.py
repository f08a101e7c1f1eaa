"""Validate sandbox responses against the vendored official Swagger 2.0 contracts.

Swagger 2.0 ``definitions`` are JSON Schema draft 4 plus a few extra keywords (ignored); we
resolve ``#/definitions/…`` refs against the spec's own definitions. In *strict* mode every object
that lists ``properties`` gets ``additionalProperties: false``, so a misspelt field name fails.

For a response we find the operation (method + path template below the provider/federation base
path) and validate the body against the schema of its status code. Statuses the contract does
not document (403, 405, 415, 429, 5xx) and unknown paths must carry the spec's ``StatusMessage``.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import yaml

import daemon
from daemon.sandbox.ebox.providers import FEDERATION_PATH
from daemon.sandbox.ebox.reference import PROVIDERS
from daemon.sandbox.ebox.token import TOKEN_PATH

SPEC_DIR = Path(daemon.__file__).resolve().parent / "ebox" / "openapi"
REGISTRY_SPEC = "e-Box-Enterprise-swagger-v2.1-AP-Public.yaml"
FEDERATION_SPEC = "ebox-federation-1.3.yaml"

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("date-time")(lambda value: not isinstance(value, str) or bool(_DATE_TIME.match(value)))
FORMATS.checks("date")(lambda value: not isinstance(value, str) or bool(_DATE.match(value)))
FORMATS.checks("uuid")(lambda value: not isinstance(value, str) or bool(_UUID.match(value)))
FORMATS.checks("uri")(lambda value: not isinstance(value, str) or value.startswith(("http://", "https://")))

stats = {"validated": 0}
"""How many responses the hook validated (a sanity check that validation really ran)."""


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        out = {key: _strict(value) for key, value in node.items()}
        if "properties" in out and "additionalProperties" not in out and "$ref" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(item) for item in node]
    return node


@dataclass
class Operation:
    template: str
    method: str
    spec: dict[str, Any]


class Spec:
    """One Swagger 2.0 file, ready to validate responses."""

    def __init__(self, filename: str, *, strict: bool = True) -> None:
        documents = list(yaml.safe_load_all((SPEC_DIR / filename).read_text(encoding="utf-8")))
        doc = documents[-1]
        definitions = copy.deepcopy(doc["definitions"])
        self.definitions = _strict(definitions) if strict else definitions
        self.operations: list[tuple[re.Pattern[str], Operation]] = []
        for template, methods in doc["paths"].items():
            parts = re.split(r"\{(\w+)\}", template)
            regex = "".join(re.escape(p) if i % 2 == 0 else "[^/]+" for i, p in enumerate(parts))
            for method, operation in methods.items():
                self.operations.append((re.compile(f"^{regex}$"), Operation(template, method.upper(), operation)))

    def schema(self, fragment: dict[str, Any]) -> dict[str, Any]:
        """A standalone draft-4 schema for a fragment that may ``$ref`` the definitions."""
        return {"definitions": self.definitions, "allOf": [fragment]}

    def validate(self, fragment: dict[str, Any], instance: Any) -> None:
        """Raise ``jsonschema.ValidationError`` when ``instance`` does not match."""
        jsonschema.Draft4Validator(self.schema(fragment), format_checker=FORMATS).validate(instance)

    def operation(self, method: str, subpath: str) -> Operation | None:
        for pattern, operation in self.operations:
            if operation.method == method and pattern.match(subpath):
                return operation
        return None


@cache
def registry_spec() -> Spec:
    return Spec(REGISTRY_SPEC)


@cache
def federation_spec() -> Spec:
    return Spec(FEDERATION_SPEC)


_STATUS_MESSAGE = {"$ref": "#/definitions/StatusMessage"}


def _locate(path: str) -> tuple[Spec, str] | None:
    if path.startswith(FEDERATION_PATH + "/"):
        return federation_spec(), path[len(FEDERATION_PATH):]
    for provider in sorted(PROVIDERS, key=lambda p: len(p.base_path), reverse=True):
        if path == provider.base_path or path.startswith(provider.base_path + "/"):
            return registry_spec(), path[len(provider.base_path):]
    return None


def _check_token_response(response: httpx.Response) -> None:
    body = response.json()
    if response.status_code == 200:
        assert set(body) >= {"access_token", "token_type", "expires_in"}, body
        assert body["token_type"] == "Bearer"
        assert isinstance(body["expires_in"], int)
    else:
        assert isinstance(body.get("error"), str), body
        assert isinstance(body.get("error_description", ""), str)
    assert response.headers["content-type"].startswith("application/json")


def validate_response(response: httpx.Response) -> None:
    """Validate one sandbox response (registry, federation or token endpoint) against the contract."""
    path = response.request.url.path
    if path.startswith("/_sandbox"):
        return
    if path == TOKEN_PATH:
        _check_token_response(response)
        stats["validated"] += 1
        return
    located = _locate(path)
    assert located is not None, f"response from a path outside every contract: {path}"
    spec, subpath = located
    status = response.status_code
    operation = spec.operation(response.request.method, subpath)
    documented = operation.spec["responses"].get(status) if operation else None
    if documented is None:
        fragment: dict[str, Any] | None = _STATUS_MESSAGE
        assert status >= 400, f"{status} undocumented for {response.request.method} {subpath}"
    else:
        fragment = documented.get("schema")
    if fragment is None:
        assert response.content == b"", f"{status} of {subpath} must have no body"
    elif fragment.get("type") == "string":
        produces = operation.spec.get("produces", []) if operation else []
        assert response.headers["content-type"].split(";")[0] in produces, response.headers
    else:
        assert response.headers["content-type"].split(";")[0] == "application/json", response.headers
        try:
            spec.validate(fragment, json.loads(response.content))
        except jsonschema.ValidationError as error:
            raise AssertionError(
                f"{response.request.method} {subpath} -> {status} violates the contract: {error.message} "
                f"at {list(error.absolute_path)}") from error
    stats["validated"] += 1


def validating_hook(response: httpx.Response) -> None:
    """httpx response event hook: read the body and validate it."""
    response.read()
    validate_response(response)
