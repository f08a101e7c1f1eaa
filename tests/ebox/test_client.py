from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from structlog.testing import capture_logs

from daemon import ebox

from .conftest import REGISTRY, FakeEbox, message_json, status_message


def test_environments():
    prd = ebox.resolve_environment("production")
    assert prd.token_url == "https://services.socialsecurity.be/REST/oauth/v5/token"
    assert prd.registry_url == "https://services.socialsecurity.be/REST/ebox/enterprise/messageRegistry/v2/"
    assert prd.provider_registry_url.endswith("/federation/v1/messageProviders")
    assert prd.assertion_audience == prd.token_url
    acc = ebox.resolve_environment("acc")
    assert acc.token_url == "https://services-acpt.socialsecurity.be/REST/oauth/v5/token"
    sandbox = ebox.resolve_environment("sandbox", base_url="http://127.0.0.1:8800/")
    assert sandbox.token_url == "http://127.0.0.1:8800/REST/oauth/v5/token"
    assert sandbox.registry_url == "http://127.0.0.1:8800/REST/ebox/enterprise/messageRegistry/v2/"
    custom = ebox.resolve_environment(
        "custom", token_url="https://t.example/token", registry_url="https://r.example/v2", audience="aud-x"
    )
    assert custom.registry_url == "https://r.example/v2/"
    assert custom.assertion_audience == "aud-x"
    assert ebox.resolve_environment("production", audience="x").audience == "x"
    with pytest.raises(ebox.UnknownEnvironment, match="base_url"):
        ebox.resolve_environment("sandbox")
    with pytest.raises(ebox.UnknownEnvironment, match="unknown environment"):
        ebox.resolve_environment("staging")
    with pytest.raises(ebox.UnknownEnvironment, match="http"):
        ebox.resolve_environment("custom", token_url="ftp://x", registry_url="https://r")


# --- authentication ----------------------------------------------------------------------------


def test_requests_carry_the_bearer_token(client, fake: FakeEbox):
    fake.json("/ebox", {"numberOfMessages": 3})
    client.summary()
    (request,) = fake.api_requests
    assert request.headers["Authorization"] == "Bearer tok-1"
    assert request.headers["Accept"] == "application/json"
    assert "On-Behalf-Of-Enterprise-Number" not in request.headers


def test_401_triggers_exactly_one_reauthentication(client, fake):
    def handler(request):
        if request.headers["Authorization"] == "Bearer tok-1":
            return status_message("TOKEN_EXPIRED", "Access token expired", 401)
        return httpx.Response(200, json={"numberOfMessages": 2})

    fake.route("GET", "/ebox", handler)
    with capture_logs() as logs:
        assert client.summary().number_of_messages == 2
    assert len(fake.token_requests) == 2
    assert [r.headers["Authorization"] for r in fake.api_requests] == ["Bearer tok-1", "Bearer tok-2"]
    assert any(e["event"] == "ebox.http.reauthenticate" for e in logs)
    assert "tok-1" not in repr(logs)


def test_second_401_is_raised_without_a_third_token(client, fake, sleeps):
    fake.route("GET", "/ebox", status_message("INVALID_TOKEN", "Access token revoked", 401))
    with pytest.raises(ebox.Unauthorized) as info:
        client.summary()
    assert info.value.code == "INVALID_TOKEN"
    assert len(fake.token_requests) == 2
    assert len(fake.api_requests) == 2
    assert sleeps == []


def test_token_is_reused_across_calls(client, fake):
    fake.json("/ebox", {"numberOfMessages": 1})
    for _ in range(3):
        client.summary()
    assert len(fake.token_requests) == 1


def test_on_behalf_of_header(credential, environment, http, fake):
    fake.json("/ebox", {"numberOfMessages": 0})
    with ebox.EboxClient(credential, environment, http_client=http, on_behalf_of="BE 0403.170.701") as c:
        c.summary()
        assert "0403.170.701" in repr(c)
    assert fake.api_requests[0].headers["On-Behalf-Of-Enterprise-Number"] == "0403170701"
    with pytest.raises(ebox.InvalidEnterpriseNumber):
        ebox.EboxClient(credential, environment, http_client=http, on_behalf_of="0403170702")
    with ebox.EboxClient(
        credential, environment, http_client=http, on_behalf_of="0403170701", on_behalf_of_header="X-Mandate"
    ) as c:
        c.summary()
    assert fake.api_requests[1].headers["X-Mandate"] == "0403170701"


# --- e-Box and messages ------------------------------------------------------------------------


def test_summary(client, fake):
    fake.json(
        "/ebox",
        {
            "numberOfMessages": 36,
            "numberOfUnreadMessages": 2,
            "lastReceiptDate": "2017-07-24T09:26:00Z",
            "eboxSize": 1800.5,
            "newField": 1,
        },
    )
    summary = client.summary()
    assert summary == ebox.EboxSummary(36, 2, datetime(2017, 7, 24, 9, 26, tzinfo=UTC), None, 1800.5)


def test_empty_box_404_is_an_empty_summary(client, fake):
    fake.route("GET", "/ebox", status_message("NOT_FOUND", "No messages found", 404))
    assert client.summary() == ebox.EboxSummary.empty()


def test_list_messages_sends_every_filter(client, fake):
    fake.json("/ebox/messages", {"items": [message_json("m1")], "totalItems": 1})
    query = ebox.MessageQuery(
        received_after=date(2017, 7, 1),
        received_before=datetime(2026, 1, 1, 23, 30, tzinfo=UTC),  # already Jan 2 in Brussels
        expired_after=date(2026, 1, 1),
        expired_before=date(2030, 1, 1),
        read_status=False,
        visible=True,
        registered_mail=False,
        message_type_id="MT1",
        sender_organization_id="0206731645",
        sender_application_id="APP",
        q="rsz",
        qlang="nl",
    )
    page = client.list_messages(query, page=2, page_size=50)
    assert dict(fake.api_requests[0].url.params) == {
        "receivedAfter": "2017-07-01",
        "receivedBefore": "2026-01-02",
        "expiredAfter": "2026-01-01",
        "expiredBefore": "2030-01-01",
        "readStatus": "false",
        "visible": "true",
        "registeredMail": "false",
        "messageTypeId": "MT1",
        "senderOrganizationId": "0206731645",
        "senderApplicationId": "APP",
        "q": "rsz",
        "qlang": "nl",
        "page": "2",
        "pageSize": "50",
    }
    assert page.total_items == 1
    assert not page.has_next


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [({"page": 0}, "page must"), ({"page_size": 101}, "page_size"), ({"page_size": 0}, "page_size")],
)
def test_paging_limits_are_checked_before_sending(client, fake, kwargs, text):
    with pytest.raises(ValueError, match=text):
        client.list_messages(**kwargs)
    assert fake.requests == []


def test_query_validation():
    with pytest.raises(ValueError, match="qlang"):
        ebox.MessageQuery(q="x")
    with pytest.raises(ValueError, match="qlang must be one of"):
        ebox.MessageQuery(q="x", qlang="en")


def test_iter_messages_walks_every_page_and_dedupes(client, fake):
    pages = {
        "1": [message_json(f"m{i}") for i in range(1, 4)],
        "2": [message_json(f"m{i}") for i in range(3, 6)],  # m3 shifted onto page 2 by a new arrival
        "3": [message_json("m6")],
    }

    def handler(request):
        assert request.url.params["pageSize"] == "3"
        return httpx.Response(200, json={"items": pages[request.url.params["page"]], "totalItems": 7})

    fake.route("GET", "/ebox/messages", handler)
    ids = [m.message_id for m in client.iter_messages(ebox.MessageQuery(read_status=False), page_size=3)]
    assert ids == ["m1", "m2", "m3", "m4", "m5", "m6"]
    assert [r.url.params["page"] for r in fake.api_requests] == ["1", "2", "3"]
    assert all(r.url.params["readStatus"] == "false" for r in fake.api_requests)


def test_iter_messages_stops_on_an_empty_page(client, fake):
    fake.route(
        "GET",
        "/ebox/messages",
        [
            httpx.Response(200, json={"items": [message_json("a")], "totalItems": 50}),
            httpx.Response(200, json={"items": [], "totalItems": 50}),
        ],
    )
    assert [m.message_id for m in client.iter_messages(page_size=1)] == ["a"]
    assert len(fake.api_requests) == 2


def test_message_model(client, fake):
    attachment = {
        "attachmentId": "a1",
        "attachmentTitle": {"nl": "brief.pdf"},
        "fileName": "brief.pdf",
        "mainContent": True,
        "mediaType": "application/pdf",
        "size": 12.5,
        "digest": {"digestMethod": "sha_256", "digestValue": "abc"},
        "contentHref": "https://x/content",
        "unknown": [1, 2],
    }
    business = {"key": "period", "name": {"fr": "Période"}, "values": [{"fr": "2026-Q3"}]}
    fake.json(
        "/ebox/messages/m/1",
        message_json(
            "m/1",
            attachments={"items": [attachment], "totalItems": 1},
            businessDataList={"items": [business], "totalItems": 1},
            forTheAttentionOf={"id": "85073003328", "type": "person", "name": "J. Peeters"},
            senderApplicationId=None,
        ),
    )
    message = client.get_message("m/1")
    assert fake.api_requests[0].url.raw_path.endswith(b"/ebox/messages/m%2F1")
    assert message.message_id == "m/1"
    assert str(message.subject) == "Onderwerp m/1"
    assert message.subject.best("fr") == "Onderwerp m/1"
    assert message.receipt_date.utcoffset() == timedelta(hours=1)
    assert message.main_attachment.file_name == "brief.pdf"
    assert message.main_attachment.approx_size_bytes == 12800
    assert message.business_data[0].values[0].fr == "2026-Q3"
    assert message.for_the_attention_of.name == "J. Peeters"
    assert message.sender_application_id is None
    assert message.visible is True


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda m: m.pop("messageId"), "Message.messageId"),
        (lambda m: m.update(readStatus="no"), "Message.readStatus"),
        (lambda m: m.update(receiptDate="yesterday"), "Message.receiptDate"),
        (lambda m: m.update(subject="plain"), "Message.subject"),
        (lambda m: m.update(attachments=[]), "Message.attachments"),
        (
            lambda m: m.update(attachments={"items": [{"fileName": "x", "mainContent": True}], "totalItems": 1}),
            "Message.attachments.items[0].mediaType",
        ),
    ],
)
def test_malformed_message_names_the_field(client, fake, mutate, field):
    data = message_json("m1")
    mutate(data)
    fake.json("/ebox/messages/m1", data)
    with pytest.raises(ebox.MalformedResponse) as info:
        client.get_message("m1")
    assert info.value.field == field
    assert field in str(info.value)


def test_non_json_body_is_malformed(client, fake):
    fake.route("GET", "/ebox", httpx.Response(200, text="<html/>", headers={"Content-Type": "text/html"}))
    with pytest.raises(ebox.MalformedResponse, match="not JSON"):
        client.summary()


def test_attachments(client, fake):
    item = {"attachmentId": "a1", "fileName": "f.csv", "mainContent": False, "mediaType": "text/csv", "size": 1}
    fake.json("/ebox/messages/m1/attachments", {"items": [item], "totalItems": 1})
    fake.json("/ebox/messages/m1/attachments/a1", item)
    assert client.list_attachments("m1")[0].media_type == "text/csv"
    assert client.get_attachment("m1", "a1").file_name == "f.csv"
    with pytest.raises(ebox.AttachmentNotFound):
        client.get_attachment("m1", "nope")


def test_body_and_missing_body(client, fake):
    fake.json("/ebox/messages/m1/body", {"fr": "Bonjour"})
    assert client.get_body("m1") == ebox.TranslatedString(fr="Bonjour")
    assert client.get_body("m2") is None


def test_payment_data(client, fake):
    fake.json(
        "/ebox/messages/m1/paymentData",
        {
            "paymentDataId": "p1",
            "amount": 100,
            "vatAmount": 21.0,
            "currency": "EUR",
            "dueDate": "2026-12-31T00:00:00+01:00",
            "iban": "BE68539007547034",
            "reference": {"structured": "+++090/9337/55493+++"},
        },
    )
    payment = client.get_payment_data("m1")
    assert payment.amount == 100.0
    assert payment.reference == {"structured": "+++090/9337/55493+++"}
    assert payment.bic is None
    fake.route("GET", "/ebox/messages/m2/paymentData", status_message("NOT_FOUND", "PaymentData not found", 404))
    assert client.get_payment_data("m2") is None


def test_hide_and_unhide_send_a_merge_patch(client, fake):
    fake.route("PATCH", "/ebox/messages", httpx.Response(200))
    client.hide(["m1", "m2"])
    client.unhide(["m3"])
    client.set_visibility({})
    first, second = fake.api_requests
    assert first.method == "PATCH"
    assert first.headers["Content-Type"] == "application/merge-patch+json"
    assert json.loads(first.content) == {
        "items": [{"messageId": "m1", "visible": False}, {"messageId": "m2", "visible": False}],
        "totalItems": 2,
    }
    assert json.loads(second.content)["items"] == [{"messageId": "m3", "visible": True}]


def test_hide_unknown_message_raises(client, fake):
    fake.route("PATCH", "/ebox/messages", status_message("NOT_FOUND", "Message/s not found", 404))
    with pytest.raises(ebox.NotFound, match="Message/s not found"):
        client.hide(["ghost"])


# --- reference data ----------------------------------------------------------------------------


def _message_type(i: str) -> dict:
    return {
        "messageTypeId": i,
        "messageTypeName": {"nl": f"Type {i}"},
        "validityPeriod": {"validityPeriodNumber": 1, "validityPeriodUnit": "year"},
        "senderOrganizationIds": [],
    }


def test_reference_data_is_cached(client, fake):
    fake.json("/referenceData/messageTypes/MT1", _message_type("MT1"))
    first = client.reference.message_type("MT1")
    second = client.reference.message_type("MT1")
    assert first is second
    assert first.validity_period == ebox.ValidityPeriod(1, "year")
    assert len(fake.api_requests) == 1


def test_reference_cache_expires_after_a_day_or_max_age():
    now = [0.0]
    cache = ebox.ReferenceCache(clock=lambda: now[0])
    cache.put(("r", "k", "1"), "day")
    cache.put(("r", "k", "2"), "short", max_age=60)
    cache.put(("r", "k", "3"), "never", max_age=0)
    now[0] = 61
    assert cache.get(("r", "k", "1")) == "day"
    assert cache.get(("r", "k", "2")) is None
    assert cache.get(("r", "k", "3")) is None
    now[0] = 24 * 3600
    assert cache.get(("r", "k", "1")) is None


def test_reference_lists_walk_pages_and_cache(client, fake):
    def handler(request):
        page = int(request.url.params["page"])
        assert request.url.params["pageSize"] == "100"
        items = [_message_type(f"T{page}-{i}") for i in range(100 if page == 1 else 5)]
        return httpx.Response(200, json={"items": items, "totalItems": 105})

    fake.route("GET", "/referenceData/messageTypes", handler)
    assert len(client.reference.message_types()) == 105
    assert len(client.reference.message_types()) == 105
    assert len(fake.api_requests) == 2


def test_sender_reference_data(client, fake):
    fake.json(
        "/referenceData/senderOrganizations/0206731645",
        {
            "organizationId": "0206731645",
            "organizationShortName": {"nl": "RSZ"},
            "organizationLogos": [
                {"imageId": "i1", "size": 2, "mediaType": "image/png", "contentHref": "https://x/i1"}
            ],
        },
        **{"Cache-Control": "public, max-age=86400"},
    )
    fake.json("/referenceData/senderApplications/APP", {"applicationId": "APP", "applicationName": {"fr": "App"}})
    fake.route(
        "GET", "/referenceData/senderOrganizations/0206731645/images/i1/content", httpx.Response(200, content=b"PNG")
    )
    org = client.reference.sender_organization("0206731645")
    assert org.short_name.nl == "RSZ"
    assert org.logos[0].media_type == "image/png"
    assert client.reference.sender_application("APP").name.best() == "App"
    assert client.reference.sender_organization_image("0206731645", "i1") == b"PNG"
    with pytest.raises(ebox.NotFound):
        client.reference.sender_application("nope")


# --- provider registry -------------------------------------------------------------------------


def _provider(pid: str, **extra) -> dict:
    data = {
        "messageProviderId": pid,
        "messageProviderName": {"en": pid},
        "messageProviderDescription": {"en": pid},
        "messageProviderUrl": f"http://ebox.test/{pid}/v2/",
        "messageProviderActivationDate": "2017-12-01",
        "messageProviderTechnicalContact": "ops@example.be",
        "apiSupportedVersion": "2.1",
    }
    data.update(extra)
    return data


def test_provider_selection_skips_maintenance_and_inactive(client, fake):
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    fake.route(
        "GET",
        "/REST/ebox/enterprise/federation/v1/messageProviders",
        httpx.Response(
            200,
            json=[
                _provider("nsso"),
                _provider(
                    "fedfin",
                    messageProviderPlannedMaintenance=[
                        {"startDate": "2026-11-27T08:00:00Z", "endDate": "2026-11-27T20:00:00Z"}
                    ],
                ),
                _provider("old", messageProviderDeactivationDate="2020-01-01"),
                _provider("future", messageProviderActivationDate="2027-01-01"),
                {"messageProviderId": "broken"},
            ],
        ),
    )
    with capture_logs() as logs:
        selection = client.select_providers(now=now)
    assert [p.provider_id for p in selection.usable] == ["nsso"]
    assert {(s.provider.provider_id, s.reason) for s in selection.skipped} == {
        ("fedfin", "maintenance"),
        ("old", "deactivated"),
        ("future", "not_yet_active"),
    }
    (maintenance,) = selection.in_maintenance
    assert maintenance.until == datetime(2026, 11, 27, 20, tzinfo=UTC)
    events = [e["event"] for e in logs]
    assert "ebox.provider.maintenance" in events
    assert "ebox.provider.malformed" in events


def test_for_provider_targets_another_registry_and_shares_tokens(client, fake):
    fake.route("GET", "/nsso/v2/ebox", httpx.Response(200, json={"numberOfMessages": 5}))
    other = client.for_provider(ebox.MessageProvider.from_json(_provider("nsso")))
    assert other.summary().number_of_messages == 5
    assert str(fake.api_requests[0].url) == "http://ebox.test/nsso/v2/ebox"
    fake.json("/ebox", {"numberOfMessages": 1})
    client.summary()
    assert len(fake.token_requests) == 1
    assert REGISTRY in repr(client)


@pytest.mark.parametrize(("attachments", "listed"), [
    ({"items": [], "totalItems": 0}, True),
    ({"items": [{"attachmentId": "a1", "fileName": "a.pdf", "mainContent": True, "mediaType": "application/pdf",
                 "size": 1.0}], "totalItems": 2}, False),  # cut short: the fetcher asks /attachments
    (None, False),  # not embedded at all
])
def test_embedded_attachment_list_is_trusted_only_when_complete(client, fake, attachments, listed):
    extra = {"attachments": attachments} if attachments is not None else {}
    fake.json("/ebox/messages/m1", message_json("m1", **extra))
    assert client.get_message("m1").all_attachments_listed is listed
