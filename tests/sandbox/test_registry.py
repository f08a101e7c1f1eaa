"""Message Registry v2.1: listing, paging, filters, read side effect, hide/unhide, payment data,
attachments and reference data. Every response goes through the contract validator."""

from __future__ import annotations

import base64
import hashlib
from datetime import date

import pytest

from daemon.sandbox.ebox.seed import BRUSSELS


def _letters(sandbox, enterprise: str, provider: str = "nsso") -> list:
    return [x for x in sandbox.catalogue.letters if x.enterprise_number == enterprise and x.provider_id == provider]


def _ids(page: dict) -> list[str]:
    return [m["messageId"] for m in page["items"]]


def test_summary_counts(sandbox, caller) -> None:
    body = caller.get("/ebox").json()
    nsso = _letters(sandbox, caller.enterprise)
    assert body["numberOfMessages"] == len(nsso) == body["numberOfUnreadMessages"]
    assert body["eboxSize"] > 0
    assert "lastConsultationDate" not in body  # omitted, never null


def test_paging_and_ordering(sandbox, caller) -> None:
    everything = caller.messages(pageSize=100)
    total = everything["totalItems"]
    assert total == len(everything["items"]) == 7
    receipts = [m["receiptDate"] for m in everything["items"]]
    assert receipts == sorted(receipts, reverse=True)  # most recent first
    pages = [caller.messages(page=n, pageSize=3) for n in (1, 2, 3)]
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    assert all(p["totalItems"] == total for p in pages)
    assert [i for p in pages for i in _ids(p)] == _ids(everything)
    assert caller.messages(page=4, pageSize=3) == {"items": [], "totalItems": total}
    assert len(caller.messages()["items"]) == 7  # default pageSize 25


@pytest.mark.parametrize(
    "params",
    [{"page": 0}, {"pageSize": 0}, {"pageSize": 101}, {"page": "x"}, {"receivedAfter": "2026-13-01"},
     {"receivedAfter": "01/02/2026"}, {"readStatus": "yes"}, {"q": "onss"}, {"q": "onss", "qlang": "en"}],
)
def test_invalid_queries_are_400(caller, params) -> None:
    response = caller.get("/ebox/messages", params=params)
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_INPUT"
    assert response.json()["environment"] == "simulation"


def test_filters_are_anded(sandbox, caller) -> None:
    letters = _letters(sandbox, caller.enterprise)
    contributions = caller.messages(messageTypeId="NSSO-CONTRIBUTIONS")
    assert contributions["totalItems"] == sum(1 for x in letters if x.message_type_id == "NSSO-CONTRIBUTIONS") == 4
    registered = caller.messages(registeredMail="true")
    assert {m["messageTypeId"] for m in registered["items"]} == {"NSSO-REMINDER"}
    assert caller.messages(registeredMail="true", messageTypeId="NSSO-CONTRIBUTIONS")["totalItems"] == 0
    assert caller.messages(senderApplicationId="nsso-attest")["totalItems"] == 2
    assert caller.messages(senderOrganizationId="0206731645")["totalItems"] == 7
    assert caller.messages(receivedAfter="2060-03-05")["totalItems"] == 0  # incoherent but valid: 200 empty
    middle = sorted(x.receipt for x in letters)[3].astimezone(BRUSSELS).date()
    before = caller.messages(receivedBefore=middle.isoformat())["totalItems"]
    after = caller.messages(receivedAfter=middle.isoformat())["totalItems"]
    assert (before, after) == (3, 3)  # strict on both sides; the day itself is in neither
    future = date(2099, 1, 1).isoformat()
    assert caller.messages(expiredBefore=future)["totalItems"] == 7
    assert caller.messages(expiredAfter=future)["totalItems"] == 0


def test_q_is_case_and_accent_insensitive_in_qlang(caller) -> None:
    # The first enterprise reads Dutch; NSSO subjects are single-language.
    assert caller.messages(q="SOCIALEZEKERHEIDSBIJDRAGEN", qlang="nl")["totalItems"] == 6
    assert caller.messages(q="socialezekerheidsbijdragen", qlang="fr")["totalItems"] == 0
    # Reference data names count too: the French org name matches through the message's sender.
    assert caller.messages(q="securite sociale", qlang="fr")["totalItems"] == 7
    assert caller.messages(q="kwartaal", qlang="nl", messageTypeId="NSSO-REMINDER")["totalItems"] == 1


def test_message_and_attachment_metadata(sandbox, caller) -> None:
    first = caller.messages(pageSize=1)["items"][0]
    detail = caller.get(f"/ebox/messages/{first['messageId']}").json()
    assert detail == first
    attachments = caller.get(f"/ebox/messages/{first['messageId']}/attachments").json()
    assert attachments == first["attachments"]
    one = attachments["items"][0]
    assert caller.get(f"/ebox/messages/{first['messageId']}/attachments/{one['attachmentId']}").json() == one
    assert caller.get("/ebox/messages/does-not-exist").status_code == 404
    assert caller.get(f"/ebox/messages/{first['messageId']}/attachments/nope").status_code == 404
    assert caller.get(f"/ebox/messages/{first['messageId']}/attachments/nope/content").status_code == 404


def test_attachment_digest_is_base64url_sha256(caller) -> None:
    for message in caller.messages(pageSize=100)["items"]:
        for attachment in message["attachments"]["items"]:
            content = caller.http.get(attachment["contentHref"], headers=caller.headers).content
            digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).decode().rstrip("=")
            assert attachment["digest"] == {"digestMethod": "sha_256", "digestValue": digest}
            assert attachment["size"] == round(len(content) / 1024, 3)
            assert content.startswith(b"%PDF-1.4")


def test_read_side_effect_only_for_main_content(sandbox, make_caller) -> None:
    caller = make_caller(0)
    caller.provider = "fedfin"
    vat = caller.messages(messageTypeId="FIN-VAT-STATEMENT")["items"][0]
    message_id = vat["messageId"]
    main = next(a for a in vat["attachments"]["items"] if a["mainContent"])
    annex = next(a for a in vat["attachments"]["items"] if not a["mainContent"])
    unread = caller.get("/ebox").json()["numberOfUnreadMessages"]
    caller.get(f"/ebox/messages/{message_id}")
    caller.get(f"/ebox/messages/{message_id}/attachments")
    caller.get(f"/ebox/messages/{message_id}/attachments/{annex['attachmentId']}/content")
    assert caller.get(f"/ebox/messages/{message_id}").json()["readStatus"] is False
    caller.get(f"/ebox/messages/{message_id}/attachments/{main['attachmentId']}/content")
    assert caller.get(f"/ebox/messages/{message_id}").json()["readStatus"] is True
    summary = caller.get("/ebox").json()
    assert summary["numberOfUnreadMessages"] == unread - 1
    assert "lastConsultationDate" in summary
    assert caller.messages(readStatus="true")["totalItems"] == 1


def test_body_as_main_content_marks_read(make_caller) -> None:
    caller = make_caller(0)
    caller.provider = "fedfin"
    info = caller.messages(messageTypeId="FIN-INFO-REQUEST")["items"][0]
    assert info["bodyMainContent"] is True
    assert info["registeredMail"] is True
    assert not any(a["mainContent"] for a in info["attachments"]["items"])
    body = caller.get(f"/ebox/messages/{info['messageId']}/body").json()
    assert set(body) == {"fr", "nl", "de"}
    assert caller.get(f"/ebox/messages/{info['messageId']}").json()["readStatus"] is True
    other = caller.messages(messageTypeId="FIN-TAX-ASSESSMENT")["items"][0]
    assert caller.get(f"/ebox/messages/{other['messageId']}/body").status_code == 404


def test_hide_and_unhide_via_merge_patch(caller) -> None:
    items = caller.messages(pageSize=2)["items"]
    patch = {"items": [{"messageId": m["messageId"], "visible": False} for m in items], "totalItems": 2}
    response = caller.patch("/ebox/messages", patch)
    assert response.status_code == 200
    assert response.content == b""
    hidden = caller.messages(visible="false")
    assert set(_ids(hidden)) == {m["messageId"] for m in items}
    assert caller.messages()["totalItems"] == 7  # hidden messages are still listed
    assert caller.get("/ebox").json()["numberOfMessages"] == 7  # and counted
    caller.patch("/ebox/messages", {"items": [{"messageId": items[0]["messageId"], "visible": True}], "totalItems": 1})
    assert _ids(caller.messages(visible="false")) == [items[1]["messageId"]]


def test_patch_errors_apply_nothing(caller) -> None:
    first = caller.messages(pageSize=1)["items"][0]["messageId"]
    wrong_type = caller.patch("/ebox/messages", {"items": [{"messageId": first, "visible": False}]},
                              content_type="application/json")
    assert wrong_type.status_code == 415
    unknown = caller.patch("/ebox/messages", {"items": [{"messageId": first, "visible": False},
                                                       {"messageId": "unknown", "visible": False}]})
    assert unknown.status_code == 404
    assert caller.messages(visible="false")["totalItems"] == 0
    for bad in (b"{not json", {"items": []}, {"items": [{"messageId": first}]},
                {"items": [{"messageId": first, "visible": False, "readStatus": True}]}):
        assert caller.patch("/ebox/messages", bad).status_code == 400


def test_payment_data(sandbox, make_caller) -> None:
    caller = make_caller(1)
    for message in caller.messages(pageSize=100)["items"]:
        assert "paymentData" not in message
        assert caller.get(f"/ebox/messages/{message['messageId']}/paymentData").status_code == 404
    caller.provider = "fedfin"
    tax = caller.messages(messageTypeId="FIN-TAX-ASSESSMENT")["items"][0]
    expected = sandbox.catalogue.letter(tax["messageId"]).payment
    data = caller.get(f"/ebox/messages/{tax['messageId']}/paymentData").json()
    assert data == tax["paymentData"]
    assert data["amount"] == float(expected.amount)
    assert data["iban"] == expected.iban
    assert data["bic"] == expected.bic
    assert data["currency"] == "EUR"
    assert data["dueDate"].startswith(expected.due_date.isoformat())
    info = caller.messages(messageTypeId="FIN-INFO-REQUEST")["items"][0]
    assert caller.get(f"/ebox/messages/{info['messageId']}/paymentData").status_code == 404


def test_reference_data(caller) -> None:
    types = caller.get("/referenceData/messageTypes")
    assert types.headers["cache-control"].startswith("public")
    assert {t["messageTypeId"] for t in types.json()["items"]} == {"NSSO-CONTRIBUTIONS", "NSSO-REMINDER",
                                                                   "NSSO-ATTESTATION"}
    assert all(t["senderOrganizationIds"] == [] for t in types.json()["items"])  # NSSO habit
    assert caller.get("/referenceData/messageTypes", params={"pageSize": 2}).json()["totalItems"] == 3
    assert caller.get("/referenceData/messageTypes/NSSO-REMINDER").json()["messageTypeName"]["fr"] == "Rappel"
    assert caller.get("/referenceData/messageTypes/NOPE").status_code == 404
    assert caller.get("/referenceData/senderOrganizations/0206731645").status_code == 200
    assert caller.get("/referenceData/senderApplications").json()["totalItems"] == 2
    assert caller.get("/referenceData/messageTypes", params={"pageSize": 500}).status_code == 400
    org = caller.get("/referenceData/senderOrganizations/0308357159", provider="fedfin").json()
    logo = org["organizationLogos"][0]
    image = caller.http.get(logo["contentHref"], headers=caller.headers)
    assert image.content.startswith(b"\x89PNG")
    assert caller.get("/referenceData/senderOrganizations/0308357159/images/x/content", "fedfin").status_code == 404


def test_empty_ebox_is_404_and_unknown_path(sandbox, make_caller) -> None:
    caller = make_caller(enterprise="0417497106")  # valid CBE without seeded letters
    assert caller.get("/ebox").status_code == 404
    assert caller.messages() == {"items": [], "totalItems": 0}
    assert caller.get("/nothing/here").status_code == 404
    not_allowed = caller.http.delete(caller.url("/ebox/messages"), headers=caller.headers)
    assert (not_allowed.status_code, not_allowed.json()["code"]) == (405, "METHOD_NOT_ALLOWED")
    fed = caller.http.delete(sandbox.providers_url, headers=caller.headers)
    assert (fed.status_code, fed.json()["environment"]) == (405, "SIMULATION")


def test_service_provider_mandate_header(sandbox, make_caller) -> None:
    client_cbe = sandbox.catalogue.enterprises[1].number
    caller = make_caller(0, mandates=[client_cbe])
    caller.extra_headers = {"On-Behalf-Of-Enterprise-Number": client_cbe}
    theirs = caller.messages()
    assert {sandbox.catalogue.letter(m["messageId"]).enterprise_number for m in theirs["items"]} == {client_cbe}
    caller.extra_headers = {"On-Behalf-Of-Enterprise-Number": sandbox.catalogue.enterprises[2].number}
    refused = caller.get("/ebox/messages")
    assert (refused.status_code, refused.json()["code"]) == (403, "NO_MANDATE")
    caller.extra_headers = {"On-Behalf-Of-Enterprise-Number": "12345"}
    assert caller.get("/ebox/messages").status_code == 400


def test_messages_expire(sandbox, caller) -> None:
    assert caller.messages()["totalItems"] == 7
    sandbox.state.settings.token_lifetime = 10**9
    caller.fetch_token()
    sandbox.advance_clock(250 * 86400)  # the oldest letter passes its 18-month validity
    remaining = caller.messages(pageSize=100)
    assert 0 < remaining["totalItems"] < 7
