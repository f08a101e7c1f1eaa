"""Reference data operations: message types, sender applications, sender organizations, logos.

Answers carry the cache headers DPs must send (ebox.md §7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from daemon.sandbox.ebox.errors import ApiError
from daemon.sandbox.ebox.messages import paged, parse_page, size_kb
from daemon.sandbox.ebox.reference import MESSAGE_TYPES, SENDER_APPLICATIONS, SENDER_ORGANIZATIONS, logo_png
from daemon.sandbox.httpkit import Response, json_response

if TYPE_CHECKING:
    from collections.abc import Callable

    from daemon.sandbox.ebox.registry import Call

__all__ = ["CACHE_CONTROL", "ROUTES"]

CACHE_CONTROL = "public, no-transform, proxy-revalidate, max-age=86400"
_CACHED = {"Cache-Control": CACHE_CONTROL}

# collection path segment -> (table, id parameter, logos field)
_TABLES: dict[str, tuple[dict[str, dict[str, dict[str, Any]]], str, str | None]] = {
    "messageTypes": (MESSAGE_TYPES, "messageTypeId", None),
    "senderApplications": (SENDER_APPLICATIONS, "senderApplicationId", "applicationLogos"),
    "senderOrganizations": (SENDER_ORGANIZATIONS, "senderOrganizationId", "organizationLogos"),
}


def _render(call: Call, collection: str, entry: dict[str, Any]) -> dict[str, Any]:
    out = dict(entry)
    logos_field = _TABLES[collection][2]
    if logos_field and out.get(logos_field):
        own_id = entry["organizationId"] if collection == "senderOrganizations" else entry["applicationId"]
        out[logos_field] = [
            {**image, "size": size_kb(logo_png()),
             "contentHref": f"{call.base}/referenceData/{collection}/{own_id}/images/{image['imageId']}/content"}
            for image in out[logos_field]
        ]
    return out


def _lister(collection: str) -> Callable[[Call], Response]:
    def handler(call: Call) -> Response:
        page, page_size = parse_page(call.request.query)
        table = _TABLES[collection][0].get(call.provider.provider_id, {})
        items = [_render(call, collection, entry) for entry in table.values()]
        return json_response(200, paged(items, page, page_size), _CACHED)

    return handler


def _entry(call: Call, collection: str) -> dict[str, Any]:
    table, parameter, _ = _TABLES[collection]
    wanted = call.params[parameter]
    entry = table.get(call.provider.provider_id, {}).get(wanted)
    if entry is None:
        raise ApiError(404, "NOT_FOUND", f"{collection} not found: {wanted}")
    return entry


def _getter(collection: str) -> Callable[[Call], Response]:
    def handler(call: Call) -> Response:
        return json_response(200, _render(call, collection, _entry(call, collection)), _CACHED)

    return handler


def _image(collection: str) -> Callable[[Call], Response]:
    def handler(call: Call) -> Response:
        entry = _entry(call, collection)
        logos = entry.get(_TABLES[collection][2] or "", [])
        if not any(image["imageId"] == call.params["imageId"] for image in logos):
            raise ApiError(404, "NOT_FOUND", f"Image not found: {call.params['imageId']}")
        return Response(200, logo_png(), {"Content-Type": "application/octet-stream", **_CACHED})

    return handler


ROUTES: tuple[tuple[str, str, Callable[[Call], Response]], ...] = (
    ("GET", "/referenceData/messageTypes", _lister("messageTypes")),
    ("GET", "/referenceData/messageTypes/{messageTypeId}", _getter("messageTypes")),
    ("GET", "/referenceData/senderApplications", _lister("senderApplications")),
    ("GET", "/referenceData/senderApplications/{senderApplicationId}", _getter("senderApplications")),
    ("GET", "/referenceData/senderApplications/{senderApplicationId}/images/{imageId}/content",
     _image("senderApplications")),
    ("GET", "/referenceData/senderOrganizations", _lister("senderOrganizations")),
    ("GET", "/referenceData/senderOrganizations/{senderOrganizationId}", _getter("senderOrganizations")),
    ("GET", "/referenceData/senderOrganizations/{senderOrganizationId}/images/{imageId}/content",
     _image("senderOrganizations")),
)
