"""The Message Registry v2.1 of one Document Provider: ``/ebox``, ``/ebox/messages/**``.

Mounted by :mod:`daemon.sandbox.ebox.app` under the provider's base path (for NSSO
``/REST/ebox/enterprise/messageRegistry/v2``). Reference data lives in :mod:`.refdata`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daemon.sandbox.ebox import refdata
from daemon.sandbox.ebox.auth import Principal, authenticate
from daemon.sandbox.ebox.errors import ApiError
from daemon.sandbox.ebox.messages import (
    attachment_json,
    fmt_datetime,
    message_json,
    paged,
    parse_query,
    payment_data_json,
    size_kb,
)
from daemon.sandbox.ebox.reference import ProviderInfo
from daemon.sandbox.ebox.seed import SeedAttachment
from daemon.sandbox.ebox.state import DOC_CONSUMER_SCOPE, LEGACY_SCOPES, MessageRecord, SandboxState
from daemon.sandbox.httpkit import Request, Response, Router, json_response

__all__ = ["Call", "RegistryApi"]


@dataclass(frozen=True)
class Call:
    """One authenticated call to a provider's registry."""

    state: SandboxState
    provider: ProviderInfo
    principal: Principal
    request: Request
    params: dict[str, str]

    @property
    def base(self) -> str:
        """Absolute base URL of this provider's registry, as the client addresses it."""
        return f"{self.request.base_url}{self.provider.base_path}"

    def records(self) -> list[MessageRecord]:
        """The caller's non-expired messages at this provider, newest first."""
        return self.state.mailbox(self.provider.provider_id, self.principal.enterprise_number)

    def record(self) -> MessageRecord:
        """The message named by ``{messageId}`` (404 when absent or expired)."""
        wanted = self.params["messageId"]
        for record in self.records():
            if record.letter.message_id == wanted:
                return record
        raise ApiError(404, "NOT_FOUND", f"Message not found: {wanted}")

    def mark_read(self, record: MessageRecord) -> None:
        """The read side effect of fetching main content (ebox.md §5.3)."""
        with self.state.lock:
            record.read = True
            self.state.last_consultation[(self.provider.provider_id, self.principal.enterprise_number)] = (
                self.state.now())


Handler = Callable[[Call], Response]


def _summary(call: Call) -> Response:
    records = call.records()
    if not records:
        raise ApiError(404, "NOT_FOUND", "No messages found")
    body: dict[str, Any] = {
        "numberOfMessages": len(records),
        "numberOfUnreadMessages": sum(1 for r in records if not r.read),
        "lastReceiptDate": fmt_datetime(max(r.letter.receipt for r in records)),
        "eboxSize": round(sum(size_kb(a.content) for r in records for a in r.letter.attachments), 3),
    }
    consulted = call.state.last_consultation.get((call.provider.provider_id, call.principal.enterprise_number))
    if consulted is not None:
        body["lastConsultationDate"] = fmt_datetime(consulted)
    return json_response(200, body)


def _list(call: Call) -> Response:
    query = parse_query(call.request.query, call.provider.provider_id)
    result = paged(query.select(call.records()), query.page, query.page_size)
    result["items"] = [message_json(record, call.base) for record in result["items"]]
    return json_response(200, result)


def _parse_patch(request: Request) -> list[tuple[str, bool]]:
    content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/merge-patch+json":
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE",
                       f"Content-Type must be application/merge-patch+json, got {content_type or 'none'!r}")
    try:
        body = request.json()
    except ValueError:
        raise ApiError(400, "INVALID_INPUT", "body is not valid JSON") from None
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise ApiError(400, "INVALID_INPUT", "body must be {\"items\": [{\"messageId\", \"visible\"}], ...}")
    changes = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("messageId"), str) \
                or not isinstance(item.get("visible"), bool):
            raise ApiError(400, "INVALID_INPUT", "each item needs messageId (string) and visible (boolean)")
        extra = set(item) - {"messageId", "visible"}
        if extra:
            raise ApiError(400, "INVALID_INPUT", f"only visible can be changed, not {sorted(extra)}")
        changes.append((item["messageId"], item["visible"]))
    return changes


def _patch(call: Call) -> Response:
    changes = _parse_patch(call.request)
    by_id = {r.letter.message_id: r for r in call.records()}
    missing = [message_id for message_id, _ in changes if message_id not in by_id]
    if missing:
        raise ApiError(404, "NOT_FOUND", f"Message/s not found: {', '.join(missing)}")
    with call.state.lock:
        for message_id, visible in changes:
            by_id[message_id].visible = visible
    return Response(200)


def _message(call: Call) -> Response:
    return json_response(200, message_json(call.record(), call.base))


def _attachment(call: Call) -> tuple[MessageRecord, SeedAttachment]:
    record = call.record()
    wanted = call.params["attachmentId"]
    for attachment in record.letter.attachments:
        if attachment.attachment_id == wanted:
            return record, attachment
    raise ApiError(404, "NOT_FOUND", f"Attachment not found: {wanted}")


def _attachments(call: Call) -> Response:
    record = call.record()
    items = [attachment_json(record.letter, a, call.base) for a in record.letter.attachments]
    return json_response(200, {"items": items, "totalItems": len(items)})


def _attachment_meta(call: Call) -> Response:
    record, attachment = _attachment(call)
    return json_response(200, attachment_json(record.letter, attachment, call.base))


def _content(call: Call) -> Response:
    record, attachment = _attachment(call)
    if attachment.main_content:
        call.mark_read(record)
    headers = {"Content-Type": "application/octet-stream",
               "Content-Disposition": f'attachment; filename="{attachment.file_name}"'}
    return Response(200, attachment.content, headers)


def _body(call: Call) -> Response:
    record = call.record()
    if record.letter.body is None:
        raise ApiError(404, "NOT_FOUND", f"Body not found for message {record.letter.message_id}")
    if record.letter.body_main_content:
        call.mark_read(record)
    return json_response(200, dict(record.letter.body))


def _payment(call: Call) -> Response:
    record = call.record()
    payment = payment_data_json(record.letter)
    if payment is None:
        raise ApiError(404, "NOT_FOUND", f"PaymentData not found for message {record.letter.message_id}")
    return json_response(200, payment)


_MESSAGES_SCOPES = (DOC_CONSUMER_SCOPE, LEGACY_SCOPES["messages"])
_ROUTES: tuple[tuple[str, str, Handler, tuple[str, ...]], ...] = (
    ("GET", "/ebox", _summary, (DOC_CONSUMER_SCOPE, LEGACY_SCOPES["summary"])),
    ("GET", "/ebox/messages", _list, _MESSAGES_SCOPES),
    ("PATCH", "/ebox/messages", _patch, _MESSAGES_SCOPES),
    ("GET", "/ebox/messages/{messageId}", _message, _MESSAGES_SCOPES),
    ("GET", "/ebox/messages/{messageId}/attachments", _attachments, _MESSAGES_SCOPES),
    ("GET", "/ebox/messages/{messageId}/attachments/{attachmentId}", _attachment_meta, _MESSAGES_SCOPES),
    ("GET", "/ebox/messages/{messageId}/attachments/{attachmentId}/content", _content, _MESSAGES_SCOPES),
    ("GET", "/ebox/messages/{messageId}/body", _body, _MESSAGES_SCOPES),
    ("GET", "/ebox/messages/{messageId}/paymentData", _payment, _MESSAGES_SCOPES),
    *((method, path, handler, (DOC_CONSUMER_SCOPE, LEGACY_SCOPES["reference"]))
      for method, path, handler in refdata.ROUTES),
)


def _missing(request: Request, status: int) -> Response:
    if status == 405:
        raise ApiError(405, "METHOD_NOT_ALLOWED", f"{request.method} not allowed on {request.path}")
    raise ApiError(404, "NOT_FOUND", f"No such resource: {request.path}")


class RegistryApi:
    """All registry operations of one provider."""

    def __init__(self, state: SandboxState, provider: ProviderInfo) -> None:
        self.state = state
        self.provider = provider
        self.router = Router()
        for method, template, handler, scopes in _ROUTES:
            self.router.add(method, template, self._guarded(handler, scopes))

    def _guarded(self, handler: Handler, scopes: tuple[str, ...]) -> Callable[[Request], Response]:
        def run(request: Request) -> Response:
            principal = authenticate(self.state, request, scopes, force_expired="expired_token" in request.flags)
            return handler(Call(self.state, self.provider, principal, request, request.params))

        return run

    def handle(self, request: Request, subpath: str) -> Response:
        """Route ``subpath`` (the path below the base path); raises :class:`ApiError`."""
        return self.router.dispatch(request, subpath or "/", lambda status: _missing(request, status))
