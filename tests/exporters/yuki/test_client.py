"""The Yuki client against the sandbox over real HTTP: sessions reused, renewed once, faults mapped
to the errors the export actor understands."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import pytest
from eboxd_yuki.client import YukiClient, next_yuki_day
from eboxd_yuki.errors import (
    DailyLimitExceeded,
    InactiveDomain,
    InvalidAccessKey,
    InvalidSession,
    NoRights,
    YukiFault,
    YukiUnavailable,
)
from eboxd_yuki.sandbox import YukiSandboxServer

from daemon.plugins import ExportDeferred, ExportError, PermanentExportError


def _client(yuki: YukiSandboxServer, key: str, **kwargs: object) -> YukiClient:
    return YukiClient(key, base_url=yuki.url, timeout=5, **kwargs)  # type: ignore[arg-type]


def test_one_session_serves_many_calls(yuki: YukiSandboxServer, access_key: str, administration: str) -> None:
    client = _client(yuki, access_key)
    assert {a.name for a in client.administrations()} == {"Acme NV", "Beta BV"}
    assert client.document_folders()[7] == "To be handled by Yuki"
    for i in range(3):
        client.upload_document_with_data(administration=administration, file_name=f"{i}.pdf", data=b"%PDF-1.4",
                                         folder=7, amount=Decimal("1234.5"), currency="EUR", remarks=f"r{i}")
    _client(yuki, access_key).administrations()  # another instance, same key: same session
    assert yuki.state.calls.count("Authenticate") == 1
    assert [u["amount"] for u in yuki.uploads()] == ["1234.50"] * 3


def test_expired_session_is_renewed_once_mid_run(yuki: YukiSandboxServer, access_key: str) -> None:
    client = _client(yuki, access_key)
    client.administrations()
    yuki.state.expire_sessions()
    client.administrations()
    client.administrations()
    assert yuki.state.calls == ["Authenticate", "Administrations", "Administrations", "Authenticate",
                                "Administrations", "Administrations"]


def test_a_session_refused_after_renewal_is_an_error_not_a_loop(yuki: YukiSandboxServer, access_key: str) -> None:
    client = _client(yuki, access_key)
    client.administrations()
    yuki.state.fail_next("Invalid session ID", operation="Administrations", count=5)
    with pytest.raises(InvalidSession):
        client.administrations()
    assert yuki.state.calls.count("Authenticate") == 2
    assert yuki.state.calls.count("Administrations") == 3


def test_invalid_access_key_is_permanent_and_says_reconnect(yuki: YukiSandboxServer) -> None:
    with pytest.raises(InvalidAccessKey) as caught:
        _client(yuki, "0" * 32).administrations()
    assert isinstance(caught.value, PermanentExportError)
    assert "eboxd yuki connect" in str(caught.value)
    assert "0" * 32 not in str(caught.value)


def test_a_key_of_the_other_country_is_refused(yuki: YukiSandboxServer) -> None:
    nl_key = yuki.state.add_key(administrations=["Dutch BV"], region="nl")["accessKey"]
    with pytest.raises(InvalidAccessKey):
        _client(yuki, nl_key).domains()


def test_daily_limit_pauses_the_domain_until_yukis_next_day(yuki: YukiSandboxServer, access_key: str) -> None:
    client = _client(yuki, access_key)
    domain = yuki.state.keys[access_key].domains[0]
    yuki.state.set_daily_limit(domain, 3)
    client.administrations()  # Authenticate + 1
    client.administrations()  # 3: the limit
    with pytest.raises(DailyLimitExceeded) as caught:
        client.administrations()
    assert isinstance(caught.value, ExportDeferred)
    assert not isinstance(caught.value, PermanentExportError)
    assert caught.value.until == next_yuki_day(dt.datetime.now(dt.UTC))
    sent = len(yuki.state.calls)
    with pytest.raises(DailyLimitExceeded):
        _client(yuki, access_key).document_folders()
    assert len(yuki.state.calls) == sent  # paused: not one more call spent


def test_next_yuki_day_is_amsterdam_midnight() -> None:
    # 23:30 UTC on 31 March 2025 is 01:30 on 1 April in Amsterdam (CEST): next midnight is 1→2 April.
    assert next_yuki_day(dt.datetime(2025, 3, 31, 23, 30, tzinfo=dt.UTC)) == dt.datetime(
        2025, 4, 1, 22, 5, tzinfo=dt.UTC)
    assert next_yuki_day(dt.datetime(2025, 1, 10, 12, 0, tzinfo=dt.UTC)) == dt.datetime(
        2025, 1, 10, 23, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize(("string", "error", "permanent"), [
    ("API-key has no rights to access this web service", NoRights, True),
    ("Domain has no active database", InactiveDomain, True),
    ("Object reference not set to an instance of an object.", YukiFault, False),
])
def test_other_faults(yuki: YukiSandboxServer, access_key: str, string: str, error: type[Exception],
                      permanent: bool) -> None:
    yuki.state.fail_next(string, operation="Domains")
    with pytest.raises(error) as caught:
        _client(yuki, access_key).domains()
    assert isinstance(caught.value, PermanentExportError) is permanent
    assert isinstance(caught.value, ExportError)


def test_no_answer_is_retryable_and_a_lost_upload_response_is_ambiguous(yuki: YukiSandboxServer, access_key: str,
                                                                         administration: str) -> None:
    client = _client(yuki, access_key)
    yuki.state.fail_next("", operation="Domains", kind="bare500")
    with pytest.raises(YukiUnavailable, match="HTTP 500"):
        client.domains()
    yuki.state.fail_next("", operation="UploadDocumentWithData", kind="reset_after_store")
    with pytest.raises(YukiUnavailable) as caught:
        client.upload_document_with_data(administration=administration, file_name="a.pdf", data=b"%PDF",
                                         folder=7, amount=Decimal(0), currency="EUR", remarks="exp-1")
    assert caught.value.ambiguous
    assert len(yuki.uploads()) == 1  # stored although the client never heard
    assert [d.remarks for d in client.search_documents("exp-1")] == ["exp-1"]


def test_nothing_listening_is_unavailable_not_ambiguous() -> None:
    with pytest.raises(YukiUnavailable) as caught:
        YukiClient("k", base_url="http://127.0.0.1:9", timeout=2).domains()
    assert not caught.value.ambiguous


def test_the_wire_is_soap_11() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        from eboxd_yuki import soap  # noqa: PLC0415

        return httpx.Response(200, content=soap.result_envelope("Authenticate", "sess"))

    YukiClient("secret-key", base_url="https://api.yukiworks.nl", transport=httpx.MockTransport(handler)).authenticate()
    [request] = seen
    assert str(request.url) == "https://api.yukiworks.nl/ws/Archive.asmx"
    assert request.headers["SOAPAction"] == '"http://www.theyukicompany.com/Authenticate"'
    assert request.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert b"<accessKey>secret-key</accessKey>" in request.content
