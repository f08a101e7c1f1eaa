"""``EboxClient``: every DocConsumer operation of the Message Registry v2.1 contract (sync, thread-safe)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import structlog

from daemon.tls import client_context

from ._cbe import EnterpriseNumber, parse_enterprise_number
from ._credentials import Credential
from ._download import DownloadResult, download_attachment_to
from ._environments import Environment
from ._errors import AttachmentNotFound, MalformedResponse, NotFound
from ._http import ApiSession
from ._messages import MAX_PAGE_SIZE, MessageQuery, page_params
from ._models import Attachment, EboxSummary, Message, Page, PaymentData, TranslatedString
from ._parsing import parse_list_envelope
from ._providers import MessageProvider, ProviderSelection, select_providers
from ._reference import ReferenceCache
from ._reference_api import ReferenceDataApi
from ._tokens import TokenProvider
from ._transport import RetryPolicy

__all__ = ["DEFAULT_TIMEOUT", "ON_BEHALF_OF_HEADER", "EboxClient"]

log = structlog.get_logger(__name__)

ON_BEHALF_OF_HEADER = "On-Behalf-Of-Enterprise-Number"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def _seg(value: str) -> str:
    if not value:
        raise ValueError("identifier is empty")
    return quote(value, safe="")


class EboxClient:
    """A DocConsumer client for one credential on one Message Registry.

    ``on_behalf_of`` switches on service-provider mode: every request carries
    ``On-Behalf-Of-Enterprise-Number`` (the header name is configurable; the consultation variant is
    inferred, see ebox.md §3.5). Share ``token_provider`` and ``reference_cache`` between clients
    to share their caches; :meth:`for_provider` does that for another Document Provider.
    """

    def __init__(
        self,
        credential: Credential,
        environment: Environment,
        *,
        token_provider: TokenProvider | None = None,
        on_behalf_of: str | EnterpriseNumber | None = None,
        on_behalf_of_header: str = ON_BEHALF_OF_HEADER,
        registry_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        http_client: httpx.Client | None = None,
        reference_cache: ReferenceCache | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.credential = credential
        self.environment = environment
        self.retry = retry or RetryPolicy()
        self.registry_url = (registry_url or environment.registry_url).rstrip("/") + "/"
        self.on_behalf_of = parse_enterprise_number(on_behalf_of) if on_behalf_of is not None else None
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, verify=client_context("ebox"))
        self._owns_tokens = token_provider is None
        self.tokens = token_provider or TokenProvider(
            environment, http_client=self._http, retry=self.retry, sleep=sleep
        )
        self._on_behalf_of_header = on_behalf_of_header
        self._sleep = sleep
        headers = {on_behalf_of_header: self.on_behalf_of.canonical} if self.on_behalf_of else {}
        self._session = ApiSession(
            credential=credential, tokens=self.tokens, http=self._http, retry=self.retry, headers=headers, sleep=sleep
        )
        self.reference_cache = reference_cache or ReferenceCache()
        self.reference = ReferenceDataApi(self._session, self.registry_url, self.reference_cache)

    def __repr__(self) -> str:
        obo = f", on_behalf_of={self.on_behalf_of.display!r}" if self.on_behalf_of else ""
        return f"EboxClient(client_id={self.credential.client_id!r}, registry={self.registry_url!r}{obo})"

    def close(self) -> None:
        if self._owns_tokens:
            self.tokens.close()
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> EboxClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def for_provider(self, provider: MessageProvider | str) -> EboxClient:
        """A client for another Document Provider's registry, sharing HTTP pool, tokens and caches.

        Close only the original client (it owns the shared resources)."""
        url = provider.url if isinstance(provider, MessageProvider) else provider
        return EboxClient(
            self.credential,
            self.environment,
            token_provider=self.tokens,
            on_behalf_of=self.on_behalf_of,
            on_behalf_of_header=self._on_behalf_of_header,
            registry_url=url,
            retry=self.retry,
            http_client=self._http,
            reference_cache=self.reference_cache,
            sleep=self._sleep,
        )

    def _url(self, path: str) -> str:
        return self.registry_url + path

    # --- e-Box -----------------------------------------------------------------------------------

    def summary(self) -> EboxSummary:
        """``GET /ebox``. A 404 with a ``StatusMessage`` ("No messages found") is an empty box."""
        try:
            data, _ = self._session.get_json(self._url("ebox"))
        except NotFound as exc:
            if exc.status is None:
                raise
            log.info("ebox.summary.empty", code=exc.code)
            return EboxSummary.empty()
        return EboxSummary.from_json(data)

    # --- messages --------------------------------------------------------------------------------

    def list_messages(self, query: MessageQuery | None = None, *, page: int = 1, page_size: int = 25) -> Page[Message]:
        """One page of ``GET /ebox/messages`` (``page`` is 1-based, ``page_size`` 1-100)."""
        params = {**(query or MessageQuery()).to_params(), **page_params(page, page_size)}
        data, _ = self._session.get_json(self._url("ebox/messages"), params=params)
        items, total = parse_list_envelope(data, "Messages", Message.from_json, skip_malformed=True)
        return Page(items, total, page, page_size)

    def iter_messages(self, query: MessageQuery | None = None, *, page_size: int = MAX_PAGE_SIZE) -> Iterator[Message]:
        """Every message matching ``query``, walking the pages; duplicates (from arrivals shifting
        pages while walking) are dropped by ``messageId``."""
        seen: set[str] = set()
        page = 1
        while True:
            result = self.list_messages(query, page=page, page_size=page_size)
            for message in result.items:
                if message.message_id not in seen:
                    seen.add(message.message_id)
                    yield message
            if not result.has_next:
                return
            page += 1

    def get_message(self, message_id: str) -> Message:
        data, _ = self._session.get_json(self._url(f"ebox/messages/{_seg(message_id)}"))
        return Message.from_json(data)

    def list_attachments(self, message_id: str) -> tuple[Attachment, ...]:
        data, _ = self._session.get_json(self._url(f"ebox/messages/{_seg(message_id)}/attachments"))
        items, _ = parse_list_envelope(data, "Attachments", Attachment.from_json)
        return items

    def get_attachment(self, message_id: str, attachment_id: str) -> Attachment:
        url = self._url(f"ebox/messages/{_seg(message_id)}/attachments/{_seg(attachment_id)}")
        data, _ = self._session.get_json(url, not_found=AttachmentNotFound)
        return Attachment.from_json(data)

    def download_attachment(
        self,
        message_id: str,
        attachment: Attachment | str,
        destination: str | Path,
        *,
        strict_size: bool = False,
        max_bytes: int | None = None,
    ) -> DownloadResult:
        """Stream the content to ``destination``, verified against the attachment's digest and size.

        Pass the :class:`Attachment` from a listing to skip a metadata request. Downloading the
        main content marks the message as read at the provider, irreversibly (logged).
        """
        if isinstance(attachment, str):
            attachment = self.get_attachment(message_id, attachment)
        if not attachment.attachment_id:
            raise ValueError("the attachment has no attachmentId")
        if attachment.main_content:
            log.info("ebox.download.main_content", message_id=message_id, attachment_id=attachment.attachment_id)
        if attachment.digest is None:
            log.warning("ebox.download.no_digest", message_id=message_id, attachment_id=attachment.attachment_id)
        url = self._url(f"ebox/messages/{_seg(message_id)}/attachments/{_seg(attachment.attachment_id)}/content")
        return download_attachment_to(
            self._session, url, Path(destination), attachment=attachment, strict_size=strict_size, max_bytes=max_bytes
        )

    def get_body(self, message_id: str) -> TranslatedString | None:
        """The body, or ``None`` when the message has none (404). Marks the message read when
        ``bodyMainContent`` is true."""
        try:
            data, _ = self._session.get_json(self._url(f"ebox/messages/{_seg(message_id)}/body"))
        except NotFound:
            return None
        return TranslatedString.from_json(data, "body")

    def get_payment_data(self, message_id: str) -> PaymentData | None:
        """Structured payment data, or ``None`` when absent (404; the usual case at NSSO)."""
        try:
            data, _ = self._session.get_json(self._url(f"ebox/messages/{_seg(message_id)}/paymentData"))
        except NotFound:
            return None
        return PaymentData.from_json(data)

    def set_visibility(self, changes: Mapping[str, bool]) -> None:
        """``PATCH /ebox/messages`` (merge-patch): set ``visible`` per message ID. All or nothing:
        one unknown ID makes the provider answer 404 and apply none."""
        if not changes:
            return
        items = [{"messageId": mid, "visible": bool(visible)} for mid, visible in changes.items()]
        body = json.dumps({"items": items, "totalItems": len(items)}).encode()
        response = self._session.request(
            "PATCH", self._url("ebox/messages"), content=body, content_type="application/merge-patch+json"
        )
        response.close()
        log.info("ebox.messages.visibility", count=len(items), visible=sorted(set(changes.values())))

    def hide(self, message_ids: Iterable[str]) -> None:
        self.set_visibility(dict.fromkeys(message_ids, False))

    def unhide(self, message_ids: Iterable[str]) -> None:
        self.set_visibility(dict.fromkeys(message_ids, True))

    # --- provider registry -----------------------------------------------------------------------

    def list_providers(self) -> tuple[MessageProvider, ...]:
        """``GET /messageProviders``; a malformed entry is logged and left out, not fatal."""
        url = self.environment.provider_registry_url
        if not url:
            raise ValueError(f"the {self.environment.name} environment has no provider registry URL")
        data, _ = self._session.get_json(url)
        if not isinstance(data, list):
            raise MalformedResponse("MessageProviderList", f"expected an array, got {type(data).__name__}")
        providers = []
        for i, item in enumerate(data):
            try:
                providers.append(MessageProvider.from_json(item, f"MessageProviderList[{i}]"))
            except MalformedResponse as exc:  # one bad entry must not hide the others
                log.warning("ebox.provider.malformed", index=i, error=str(exc))
        return tuple(providers)

    def select_providers(self, *, now: datetime | None = None) -> ProviderSelection:
        """Active providers to poll now; the not-yet-active, deactivated and in-maintenance ones are
        skipped with a warning and reported in :attr:`ProviderSelection.skipped`."""
        return select_providers(self.list_providers(), now=now)
