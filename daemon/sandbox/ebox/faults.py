"""Applying fault rules to live requests (the rules themselves live in the state).

Kinds:

- ``error``: a 5xx, optional ``Retry-After``; ``throttle``: 429 with ``Retry-After``;
- ``slow``: ``delay`` seconds before answering;
- ``truncate``: the connection closes after half the body, ``Content-Length`` announcing all of it;
- ``corrupt``: one byte of the body flipped (complete download, wrong digest);
- ``wrong_content_type``: downloads labelled ``text/html``;
- ``expired_token``: a valid bearer token is answered 401 as expired.

Bad input (JSON answers of the registry, default path ``/ebox/messages``: listings and messages):

- ``malformed_json``: the JSON body cut in half (a syntax error, ``Content-Length`` matching);
- ``invalid_utf8``: a ``0xFF`` byte inside the first string value of the body;
- ``missing_field``: ``field`` removed from the first message of a listing, or from the message;
- ``unknown_fields``: fields the contract does not know added to every object;
- ``huge_attachment``: downloads (default ``/content``) answer ``size`` bytes, streamed without
  holding them in memory, and the attachments of messages whose path matches declare half of that
  (an e-Box that under-reports: only the client's own limit can stop the download). Give ``path`` a
  message ID to aim it at one message.

Rate 1.0 always fires; lower rates draw from a seeded RNG. Body faults default to ``/content`` paths.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from daemon.sandbox.ebox.state import FaultRule, SandboxState
from daemon.sandbox.httpkit import Request, Response

__all__ = ["FAULT_KINDS", "Triggered", "after", "before"]

FAULT_KINDS = ("error", "throttle", "slow", "truncate", "corrupt", "wrong_content_type", "expired_token",
               "malformed_json", "invalid_utf8", "missing_field", "unknown_fields", "huge_attachment")
_JSON_FAULTS = ("malformed_json", "invalid_utf8", "missing_field", "unknown_fields")
_BODY_FAULTS = ("truncate", "corrupt", "wrong_content_type", *_JSON_FAULTS, "huge_attachment")
_DEFAULT_PATH = {**dict.fromkeys(_BODY_FAULTS, "/content"), **dict.fromkeys(_JSON_FAULTS, "/ebox/messages")}
_UNKNOWN = {"futureField": "added by a later contract", "futureObject": {"nested": [1, 2, 3]}}


@dataclass
class Triggered:
    """What :func:`before` decided for one request."""

    respond: FaultRule | None = None
    """An ``error``/``throttle`` rule: answer with it instead of handling."""
    delay: float = 0.0
    expired_token: bool = False
    body_faults: set[str] = field(default_factory=set)
    """The body faults (``truncate``, ``corrupt``, …, ``huge_attachment``) that fired."""
    fired: list[int] = field(default_factory=list)
    missing_field: str = ""
    huge_size: int = 0


def _fires(state: SandboxState, rule: FaultRule, path: str) -> bool:
    if (rule.path or _DEFAULT_PATH.get(rule.kind, "")) not in path:
        return False
    if rule.count is not None and rule.fired >= rule.count:
        return False
    if rule.rate < 1.0 and state.fault_rng.random() >= rule.rate:
        return False
    rule.fired += 1
    return True


def before(state: SandboxState, request: Request) -> Triggered:
    """Decide which rules fire for this request (each rule at most once per request)."""
    result = Triggered()
    with state.lock:
        for rule in state.faults:
            if rule.kind in _BODY_FAULTS and request.method != "GET":
                continue
            if not _fires(state, rule, request.path):
                continue
            result.fired.append(rule.rule_id)
            if rule.kind in ("error", "throttle") and result.respond is None:
                result.respond = rule
            elif rule.kind == "slow":
                result.delay += rule.delay
            elif rule.kind == "expired_token":
                result.expired_token = True
            elif rule.kind in _BODY_FAULTS:
                result.body_faults.add(rule.kind)
                result.missing_field = rule.field if rule.kind == "missing_field" else result.missing_field
                result.huge_size = rule.size if rule.kind == "huge_attachment" else result.huge_size
    return result


def after(triggered: Triggered, response: Response) -> Response:
    """Apply post-handler effects (delay, truncation) to the response."""
    response.delay += triggered.delay
    if response.status != 200 or len(response.body) < 2:
        return response
    if "huge_attachment" in triggered.body_faults:
        _huge(response, triggered.huge_size)
    if triggered.body_faults & {"missing_field", "unknown_fields"} and _is_json(response):
        data = json.loads(response.body)
        if "missing_field" in triggered.body_faults:
            _drop_field(data, triggered.missing_field)
        if "unknown_fields" in triggered.body_faults:
            _add_unknown(data)
        response.body = json.dumps(data, ensure_ascii=False).encode()
    if "invalid_utf8" in triggered.body_faults and _is_json(response):
        at = response.body.find(b'":"') + 3
        response.body = response.body[:at] + b"\xff" + response.body[at:]
    if "malformed_json" in triggered.body_faults and _is_json(response):
        response.body = response.body[: len(response.body) // 2]
    if "corrupt" in triggered.body_faults:
        middle = len(response.body) // 2
        response.body = response.body[:middle] + bytes([response.body[middle] ^ 0xFF]) + response.body[middle + 1 :]
    if "wrong_content_type" in triggered.body_faults:
        response.headers["Content-Type"] = "text/html; charset=utf-8"
    if "truncate" in triggered.body_faults:
        response.truncate_to = len(response.body) // 2
    return response


def _is_json(response: Response) -> bool:
    return response.headers.get("Content-Type", "").startswith("application/json")


def _drop_field(data: Any, name: str) -> None:
    """From the first message of a listing (the others stay whole), or from the message itself."""
    target = data["items"][0] if isinstance(data, dict) and data.get("items") else data
    if isinstance(target, dict):
        target.pop(name, None)


def _add_unknown(data: Any) -> None:
    if isinstance(data, dict):
        for value in list(data.values()):
            _add_unknown(value)
        data.update(_UNKNOWN)
    elif isinstance(data, list):
        for item in data:
            _add_unknown(item)


def _declare_half(data: Any, size: int) -> None:
    """Every attachment (an object with a ``contentHref``) declares ``size / 2`` bytes."""
    if isinstance(data, dict):
        if "contentHref" in data:
            data["size"] = round(size / 2 / 1024, 3)
        for value in data.values():
            _declare_half(value, size)
    elif isinstance(data, list):
        for item in data:
            _declare_half(item, size)


def _zeros(size: int, chunk: int = 1 << 16) -> Iterator[bytes]:
    block = bytes(chunk)
    for start in range(0, size, chunk):
        yield block[: min(chunk, size - start)]


def _huge(response: Response, size: int) -> None:
    if _is_json(response):
        data = json.loads(response.body)
        _declare_half(data, size)
        response.body = json.dumps(data, ensure_ascii=False).encode()
    else:
        response.body, response.stream, response.stream_length = b"", _zeros(size), size
