"""Applying fault rules to live requests (the rules themselves live in the state).

Kinds:

- ``error``: a 5xx, optional ``Retry-After``; ``throttle``: 429 with ``Retry-After``;
- ``slow``: ``delay`` seconds before answering;
- ``truncate``: the connection closes after half the body, ``Content-Length`` announcing all of it;
- ``corrupt``: one byte of the body flipped (complete download, wrong digest);
- ``wrong_content_type``: downloads labelled ``text/html``;
- ``expired_token``: a valid bearer token is answered 401 as expired.

Rate 1.0 always fires; lower rates draw from a seeded RNG. Body faults default to ``/content`` paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from daemon.sandbox.ebox.state import FaultRule, SandboxState
from daemon.sandbox.httpkit import Request, Response

__all__ = ["FAULT_KINDS", "Triggered", "after", "before"]

FAULT_KINDS = ("error", "throttle", "slow", "truncate", "corrupt", "wrong_content_type", "expired_token")
_BODY_FAULTS = ("truncate", "corrupt", "wrong_content_type")
_DEFAULT_PATH = dict.fromkeys(_BODY_FAULTS, "/content")


@dataclass
class Triggered:
    """What :func:`before` decided for one request."""

    respond: FaultRule | None = None
    """An ``error``/``throttle`` rule: answer with it instead of handling."""
    delay: float = 0.0
    expired_token: bool = False
    body_faults: set[str] = field(default_factory=set)
    """``truncate``, ``corrupt``, ``wrong_content_type`` rules that fired."""
    fired: list[int] = field(default_factory=list)


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
    return result


def after(triggered: Triggered, response: Response) -> Response:
    """Apply post-handler effects (delay, truncation) to the response."""
    response.delay += triggered.delay
    if response.status != 200 or len(response.body) < 2:
        return response
    if "corrupt" in triggered.body_faults:
        middle = len(response.body) // 2
        response.body = response.body[:middle] + bytes([response.body[middle] ^ 0xFF]) + response.body[middle + 1 :]
    if "wrong_content_type" in triggered.body_faults:
        response.headers["Content-Type"] = "text/html; charset=utf-8"
    if "truncate" in triggered.body_faults:
        response.truncate_to = len(response.body) // 2
    return response
