"""``/referenceData/…`` operations (ops 10-17), cached in memory per registry for up to a day."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import structlog

from ._http import ApiSession
from ._messages import MAX_PAGE_SIZE, page_params
from ._models import Page
from ._parsing import parse_list_envelope
from ._reference import MessageType, ReferenceCache, SenderApplication, SenderOrganization, max_age_from

__all__ = ["ReferenceDataApi"]

log = structlog.get_logger(__name__)

T = TypeVar("T")


class ReferenceDataApi:
    """Reachable as ``EboxClient.reference``. Single items and whole lists are cached."""

    def __init__(self, session: ApiSession, registry_url: str, cache: ReferenceCache) -> None:
        self._session = session
        self._base = registry_url
        self._cache = cache

    # --- generic ---------------------------------------------------------------------------------

    def _get_one(self, kind: str, item_id: str, parser: Callable[[Any, str], T], name: str) -> T:
        key = (self._base, kind, item_id)
        cached = self._cache.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        data, response = self._session.get_json(f"{self._base}referenceData/{kind}/{quote(item_id, safe='')}")
        value = parser(data, name)
        self._cache.put(key, value, max_age=max_age_from(response.headers.get("Cache-Control")))
        return value

    def _page(self, kind: str, parser: Callable[[Any, str], T], name: str, page: int, page_size: int) -> Page[T]:
        data, _ = self._session.get_json(f"{self._base}referenceData/{kind}", params=page_params(page, page_size))
        items, total = parse_list_envelope(data, name, parser)
        return Page(items, total, page, page_size)

    def _all(self, kind: str, parser: Callable[[Any, str], T], name: str) -> tuple[T, ...]:
        key = (self._base, kind, "*")
        cached = self._cache.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        collected: list[T] = []
        page = 1
        while True:
            result = self._page(kind, parser, name, page, MAX_PAGE_SIZE)
            collected.extend(result.items)
            if not result.has_next:
                break
            page += 1
        value = tuple(collected)
        self._cache.put(key, value)
        return value

    def _image(self, kind: str, owner_id: str, image_id: str) -> bytes:
        url = f"{self._base}referenceData/{kind}/{quote(owner_id, safe='')}/images/{quote(image_id, safe='')}/content"
        response = self._session.request("GET", url, accept="image/*, application/octet-stream")
        return response.content

    # --- message types ---------------------------------------------------------------------------

    def message_types(self) -> tuple[MessageType, ...]:
        return self._all("messageTypes", MessageType.from_json, "MessageTypes")

    def message_types_page(self, *, page: int = 1, page_size: int = 25) -> Page[MessageType]:
        return self._page("messageTypes", MessageType.from_json, "MessageTypes", page, page_size)

    def message_type(self, message_type_id: str) -> MessageType:
        return self._get_one("messageTypes", message_type_id, MessageType.from_json, "MessageType")

    # --- sender applications ---------------------------------------------------------------------

    def sender_applications(self) -> tuple[SenderApplication, ...]:
        return self._all("senderApplications", SenderApplication.from_json, "SenderApplications")

    def sender_applications_page(self, *, page: int = 1, page_size: int = 25) -> Page[SenderApplication]:
        return self._page("senderApplications", SenderApplication.from_json, "SenderApplications", page, page_size)

    def sender_application(self, application_id: str) -> SenderApplication:
        return self._get_one("senderApplications", application_id, SenderApplication.from_json, "SenderApplication")

    def sender_application_image(self, application_id: str, image_id: str) -> bytes:
        return self._image("senderApplications", application_id, image_id)

    # --- sender organizations --------------------------------------------------------------------

    def sender_organizations(self) -> tuple[SenderOrganization, ...]:
        return self._all("senderOrganizations", SenderOrganization.from_json, "SenderOrganizations")

    def sender_organizations_page(self, *, page: int = 1, page_size: int = 25) -> Page[SenderOrganization]:
        return self._page("senderOrganizations", SenderOrganization.from_json, "SenderOrganizations", page, page_size)

    def sender_organization(self, organization_id: str) -> SenderOrganization:
        return self._get_one("senderOrganizations", organization_id, SenderOrganization.from_json, "SenderOrganization")

    def sender_organization_image(self, organization_id: str, image_id: str) -> bytes:
        return self._image("senderOrganizations", organization_id, image_id)
