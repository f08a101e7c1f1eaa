"""The Yuki sandbox on the wire, driven with hand-written envelopes (not our client): what Yuki
does with faults, sessions, parameter order and its daily limit."""

from __future__ import annotations

import base64
import datetime as dt

import httpx
from eboxd_yuki import soap
from eboxd_yuki.sandbox import YukiSandboxServer, serve_yuki_sandbox

NS = soap.YUKI_NS


def _raw(yuki: YukiSandboxServer, operation: str, inner: str, action: str | None = None) -> httpx.Response:
    body = (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{soap.SOAP_NS}"><soap:Body>'
            f'<{operation} xmlns="{NS}">{inner}</{operation}></soap:Body></soap:Envelope>')
    return httpx.post(f"{yuki.url}/ws/Archive.asmx", content=body.encode(), timeout=5,
                      headers={"Content-Type": soap.CONTENT_TYPE,
                               "SOAPAction": f'"{NS}{action or operation}"'})


def _session(yuki: YukiSandboxServer, key: str) -> str:
    response = _raw(yuki, "Authenticate", f"<accessKey>{key}</accessKey>")
    assert response.status_code == 200
    result = soap.parse_result("Authenticate", response.content)
    assert isinstance(result, str)
    return result


def _fault(response: httpx.Response) -> soap.Fault:
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/xml")
    fault = soap.parse_fault(response.content)
    assert fault is not None
    return fault


def _upload(session: str, administration: str, *, amount: str = "10.00", folder: str = "1") -> str:
    data = base64.b64encode(b"%PDF-1.4 x").decode()
    return (f"<sessionID>{session}</sessionID><fileName>f.pdf</fileName><data>{data}</data><folder>{folder}</folder>"
            f"<administrationID>{administration}</administrationID><currency>EUR</currency><amount>{amount}</amount>"
            f"<paymentMethod>0</paymentMethod><remarks>r</remarks>")


def test_faults_are_http_500_with_a_soap_fault(yuki: YukiSandboxServer, access_key: str) -> None:
    assert _fault(_raw(yuki, "Authenticate", "<accessKey>nope</accessKey>")).string == "Invalid access key"
    assert _fault(_raw(yuki, "Administrations", "<sessionID>stale</sessionID>")).string == "Invalid session ID"
    assert "SOAPAction" in _fault(_raw(yuki, "Domains", "<sessionID>x</sessionID>", action="Administrations")).string
    assert "Unknown operation" in _fault(_raw(yuki, "DeleteEverything", "")).string


def test_mis_cased_or_out_of_order_children_read_as_no_session(yuki: YukiSandboxServer, access_key: str,
                                                               administration: str) -> None:
    session = _session(yuki, access_key)
    assert _fault(_raw(yuki, "Administrations", f"<sessionId>{session}</sessionId>")).string == "Invalid session ID"
    swapped = _upload(session, administration).replace("<fileName>f.pdf</fileName>", "")
    swapped = swapped.replace("<remarks>r</remarks>", "") + "<fileName>f.pdf</fileName>"
    assert _fault(_raw(yuki, "UploadDocumentWithData", swapped)).string == "Invalid session ID"
    assert yuki.uploads() == []


def test_upload_validation(yuki: YukiSandboxServer, access_key: str, administration: str) -> None:
    session = _session(yuki, access_key)
    comma = _fault(_raw(yuki, "UploadDocumentWithData", _upload(session, administration, amount="10,50")))
    assert comma.code == "soap:Client"
    assert "not in a correct format" in comma.string
    empty_int = _upload(session, administration).replace("<paymentMethod>0</paymentMethod>",
                                                         "<paymentMethod></paymentMethod>")
    assert "not in a correct format" in _fault(_raw(yuki, "UploadDocumentWithData", empty_int)).string
    no_folder = _raw(yuki, "UploadDocumentWithData", _upload(session, administration, folder="6"))
    assert "Folder 6" in _fault(no_folder).string
    ok = _raw(yuki, "UploadDocumentWithData", _upload(session, administration))
    assert ok.status_code == 200
    document_id = soap.parse_result("UploadDocumentWithData", ok.content)
    [upload] = httpx.get(f"{yuki.url}/_sandbox/uploads", timeout=5).json()
    assert upload["id"] == document_id
    assert (upload["folder"], upload["amount"], upload["size"]) == (1, "10.00", 10)


def test_daily_limit_counts_every_call_and_resets_at_amsterdam_midnight() -> None:
    now = [dt.datetime(2025, 6, 2, 21, 0, tzinfo=dt.UTC)]  # 23:00 in Amsterdam
    with serve_yuki_sandbox(clock=lambda: now[0]) as yuki:
        key = next(iter(yuki.state.keys))
        domain = yuki.state.keys[key].domains[0]
        yuki.state.set_daily_limit(domain, 2)
        session = _session(yuki, key)  # call 1
        assert _raw(yuki, "Domains", f"<sessionID>{session}</sessionID>").status_code == 200  # call 2
        fault = _fault(_raw(yuki, "Domains", f"<sessionID>{session}</sessionID>"))
        assert (fault.code, fault.string) == ("soap:Client", "Daily limit exceeded")
        assert "1000" not in fault.detail
        assert "2 free webservice calls" in fault.detail
        now[0] += dt.timedelta(minutes=59)  # 23:59 in Amsterdam: same day
        assert _fault(_raw(yuki, "Authenticate", f"<accessKey>{key}</accessKey>")).string == "Daily limit exceeded"
        now[0] += dt.timedelta(minutes=2)  # 00:01: a new day
        assert _raw(yuki, "Domains", f"<sessionID>{session}</sessionID>").status_code == 200


def test_sessions_expire_after_24_hours() -> None:
    now = [dt.datetime(2025, 6, 2, 8, 0, tzinfo=dt.UTC)]
    with serve_yuki_sandbox(clock=lambda: now[0]) as yuki:
        session = _session(yuki, next(iter(yuki.state.keys)))
        now[0] += dt.timedelta(hours=23, minutes=59)
        assert _raw(yuki, "Domains", f"<sessionID>{session}</sessionID>").status_code == 200
        now[0] += dt.timedelta(minutes=2)
        assert _fault(_raw(yuki, "Domains", f"<sessionID>{session}</sessionID>")).string == "Invalid session ID"


def test_control_api(yuki: YukiSandboxServer) -> None:
    made = httpx.post(f"{yuki.url}/_sandbox/keys", json={"administrations": ["X BV"], "dailyLimit": 5}, timeout=5)
    assert made.status_code == 201
    key = made.json()["accessKey"]
    assert any(k["accessKey"] == key for k in httpx.get(f"{yuki.url}/_sandbox", timeout=5).json()["keys"])
    httpx.post(f"{yuki.url}/_sandbox/faults", json={"string": "Boom", "operation": "Authenticate"}, timeout=5)
    assert _fault(_raw(yuki, "Authenticate", f"<accessKey>{key}</accessKey>")).string == "Boom"
    session = _session(yuki, key)
    assert httpx.post(f"{yuki.url}/_sandbox/expire-sessions", timeout=5).json()["expired"] >= 1
    assert _fault(_raw(yuki, "Domains", f"<sessionID>{session}</sessionID>")).string == "Invalid session ID"
    assert httpx.post(f"{yuki.url}/_sandbox/faults", json={}, timeout=5).status_code == 400
