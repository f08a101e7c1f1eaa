"""The Exact sandbox keeps Exact's rules (accounting spec §5), spoken to over HTTP with plain httpx:
OAuth codes and rotating refresh tokens, OData lists, errors, limits, the body cap."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from eboxd_exact.oauth import OAuthApp, authorize_url
from eboxd_exact.odata import FilterError, compile_filter
from eboxd_exact.sandbox import ExactSandboxServer

from tests.exporters.exact.conftest import FakeClock, consent, sandbox_app

API = "/api/v1/124132"


def _token(exact: ExactSandboxServer, app: OAuthApp, **form: str) -> httpx.Response:
    return httpx.post(exact.url + "/api/oauth2/token", data={
        "client_id": app.client_id, "client_secret": app.client_secret, **form})


def _pair(exact: ExactSandboxServer) -> dict[str, str]:
    app = sandbox_app(exact)
    response = _token(exact, app, grant_type="authorization_code", code=consent(exact, app),
                      redirect_uri=app.redirect_uri)
    assert response.status_code == 200
    return response.json()


def _get(exact: ExactSandboxServer, path: str, token: str, **params: str) -> httpx.Response:
    return httpx.get(exact.url + path, params=params, headers={"Authorization": f"Bearer {token}"})


def _post(exact: ExactSandboxServer, path: str, token: str, body: object) -> httpx.Response:
    return httpx.post(exact.url + path, json=body, headers={"Authorization": f"Bearer {token}"})


def test_authorization_code_is_single_use_and_bound_to_the_redirect_uri(exact: ExactSandboxServer) -> None:
    app = sandbox_app(exact)
    wrong = httpx.get(authorize_url(OAuthApp(app.base_url, app.client_id, "", "http://127.0.0.1:1/elsewhere"), "s"))
    assert wrong.status_code == 400
    redirected = httpx.get(authorize_url(app, "xyz"))
    location = urlsplit(redirected.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == app.redirect_uri
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    code = query["code"][0]
    first = _token(exact, app, grant_type="authorization_code", code=code, redirect_uri=app.redirect_uri)
    assert first.status_code == 200
    body = first.json()
    assert body["expires_in"] == "600"  # a string, as Exact sends it
    assert body["token_type"] == "bearer"
    again = _token(exact, app, grant_type="authorization_code", code=code, redirect_uri=app.redirect_uri)
    assert again.status_code == 400
    bad_secret = httpx.post(exact.url + "/api/oauth2/token", data={
        "client_id": app.client_id, "client_secret": "nope", "grant_type": "authorization_code", "code": "x"})
    assert bad_secret.status_code == 400


def test_refresh_tokens_rotate_are_single_use_and_not_refreshed_too_early(
        exact: ExactSandboxServer, clock: FakeClock) -> None:
    app = sandbox_app(exact)
    pair = _pair(exact)
    early = _token(exact, app, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert early.status_code == 400
    assert early.json()["error"] == "access_denied"
    assert early.headers["Reason"].startswith("TooEarlyToRefreshTokens")
    clock.advance(571)
    fresh = _token(exact, app, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert fresh.status_code == 200
    new = fresh.json()
    assert new["refresh_token"] != pair["refresh_token"]
    assert _get(exact, "/api/v1/current/Me", pair["access_token"]).status_code == 401  # replaced
    assert _get(exact, "/api/v1/current/Me", new["access_token"]).status_code == 200
    old = _token(exact, app, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert old.status_code == 401
    assert old.json()["error_description"] == "Old refresh token used."
    assert _get(exact, "/api/v1/current/Me", new["access_token"]).status_code == 401  # the chain is dead


def test_access_tokens_expire_after_600_seconds_and_reconsent_kills_the_old_chain(
        exact: ExactSandboxServer, clock: FakeClock) -> None:
    first = _pair(exact)
    clock.advance(599)
    assert _get(exact, "/api/v1/current/Me", first["access_token"]).status_code == 200
    clock.advance(2)
    assert _get(exact, "/api/v1/current/Me", first["access_token"]).status_code == 401
    second = _pair(exact)
    app = sandbox_app(exact)
    assert _token(exact, app, grant_type="refresh_token", refresh_token=first["refresh_token"]).status_code == 401
    assert _get(exact, "/api/v1/current/Me", second["access_token"]).status_code == 200


def test_an_idle_refresh_token_dies_after_30_days(exact: ExactSandboxServer, clock: FakeClock) -> None:
    pair = _pair(exact)
    clock.advance(31 * 86_400)
    expired = _token(exact, sandbox_app(exact), grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert expired.status_code == 400
    assert expired.json()["error"] == "invalid_request"
    assert expired.json()["error_description"].startswith("The refresh token expired at ")


def test_odata_lists_select_filter_top_and_next_pages(exact: ExactSandboxServer) -> None:
    token = _pair(exact)["access_token"]
    refused = _get(exact, f"{API}/crm/Accounts", token)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"]["value"].startswith("Please add a $select or a $top=1")
    first = _get(exact, f"{API}/crm/Accounts", token, **{"$select": "ID,Code"}).json()["d"]
    assert len(first["results"]) == 60
    assert set(first["results"][0]) == {"ID", "Code"}
    seen = [row["ID"] for row in first["results"]]
    following = first["__next"]
    while following:
        assert following.startswith(exact.url + f"{API}/crm/Accounts?")
        page = httpx.get(following, headers={"Authorization": f"Bearer {token}"}).json()["d"]
        seen += [row["ID"] for row in page["results"]]
        following = page.get("__next")
    assert len(seen) == len(set(seen)) == 130
    found = _get(exact, f"{API}/crm/Accounts", token, **{
        "$filter": "VATNumber eq 'BE0308357159' or trim(Code) eq '2'", "$select": "Name,Code"}).json()["d"]
    codes = {row["Name"]: row["Code"] for row in found["results"]}
    assert set(codes) == {"FOD Financiën", "RSZ"}
    assert codes["FOD Financiën"] == " " * 17 + "1"  # 18 characters, right-aligned
    top = _get(exact, f"{API}/crm/Accounts", token, **{"$top": "1"}).json()["d"]
    assert len(top["results"]) == 1
    assert "__next" not in top
    me = _get(exact, "/api/v1/current/Me", token).json()["d"]["results"][0]
    assert me["CurrentDivision"] == 124132


def test_documents_attachments_and_exact_errors(exact: ExactSandboxServer) -> None:
    token = _pair(exact)["access_token"]
    created = _post(exact, f"{API}/documents/Documents", token, {"Subject": "Aanslag [eboxd exp-1]", "Type": 55})
    assert created.status_code == 201
    document = created.json()["d"]
    assert (document["TypeDescription"], document["Created"][:6]) == ("Miscellaneous", "/Date(")
    bad = _post(exact, f"{API}/documents/DocumentAttachments", token,
                {"Document": document["ID"], "FileName": "a.pdf", "Attachment": "not base64!"})
    assert bad.status_code == 400
    assert "Byte[]" in bad.json()["error"]["message"]["value"]
    good = _post(exact, f"{API}/documents/DocumentAttachments", token, {
        "Document": document["ID"], "FileName": "a.pdf", "Attachment": base64.b64encode(b"%PDF").decode()})
    assert good.status_code == 201
    assert good.json()["d"]["Attachment"] is None
    assert good.json()["d"]["FileSize"] == 4
    found = _get(exact, f"{API}/documents/Documents", token, **{
        "$filter": "substringof('exp-1',Subject) eq true", "$select": "ID,Subject"}).json()["d"]["results"]
    assert [row["ID"] for row in found] == [document["ID"]]
    wrong = _get(exact, "/api/v1/999/documents/Documents", token, **{"$select": "ID"})
    assert wrong.status_code == 403
    assert wrong.json() == {"error": {"code": "", "message": {"lang": "", "value": "Forbidden - WrongDivision"}}}
    big = _post(exact, f"{API}/documents/DocumentAttachments", token, {
        "Document": document["ID"], "FileName": "b.pdf", "Attachment": "A" * (10 * 1024 * 1024)})
    assert big.status_code == 413
    entry = _post(exact, f"{API}/purchaseentry/PurchaseEntries", token, {
        "Journal": "60", "Supplier": exact.state.accounts[124132][0]["ID"],
        "PurchaseEntryLines": [{"GLAccount": "x", "AmountFC": "10"}]})
    assert entry.status_code == 201
    assert entry.json()["d"]["Document"]  # Exact makes an empty document when none is given
    assert len(exact.state.documents) == 2


def test_rate_limit_headers_429_and_the_hourly_error_block(exact: ExactSandboxServer, clock: FakeClock) -> None:
    token = _pair(exact)["access_token"]
    exact.state.set_limits(minutely=3)
    answers = [_get(exact, "/api/v1/current/Me", token) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["X-RateLimit-Minutely-Remaining"] == "2"
    assert int(answers[0].headers["X-RateLimit-Minutely-Reset"]) > 10**12  # epoch milliseconds
    assert "X-RateLimit-Remaining" in answers[0].headers
    assert "X-RateLimit-Remaining" not in answers[3].headers  # the minute is spent: only minutely headers
    clock.advance(61)
    exact.state.set_limits(minutely=60)
    for _ in range(11):
        assert _get(exact, f"{API}/crm/Accounts", token).status_code == 400  # no $select
    blocked = _get(exact, f"{API}/crm/Accounts", token, **{"$select": "ID"})
    assert blocked.status_code == 403
    assert "blocked" in blocked.json()["error"]["message"]["value"]
    assert _get(exact, f"{API}/documents/DocumentTypes", token).status_code == 200  # per endpoint


def test_filter_parser_refuses_what_it_cannot_read() -> None:
    row = {"Name": "O'Brien", "Amount": 5, "ID": "8f1b7c5e-8c8e-4d6b-9f00-000000000001"}
    assert compile_filter("Name eq 'O''Brien' and Amount ge 5")(row)
    assert compile_filter("ID eq guid'8F1B7C5E-8C8E-4D6B-9F00-000000000001'")(row)
    assert not compile_filter("(Amount gt 5 or Name eq 'x')")(row)
    for text in ("Name eq", "Name like 'x'", "Name eq 'x' )", "$bad"):
        with pytest.raises(FilterError):
            compile_filter(text)(row)
