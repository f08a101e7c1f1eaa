"""Provider registry (federation v1.3): several DPs, one in maintenance, one deactivated."""

from __future__ import annotations

from daemon.sandbox.ebox import REGISTRY_SCOPE


def test_lists_providers_pointing_at_the_sandbox(sandbox, caller) -> None:
    response = caller.http.get(sandbox.providers_url, headers=caller.headers)
    assert response.status_code == 200
    providers = {p["messageProviderId"]: p for p in response.json()}
    assert set(providers) == {"nsso", "fedfin", "legacy"}
    assert providers["nsso"]["messageProviderUrl"] == sandbox.registry_url("nsso") + "/"
    assert providers["legacy"]["messageProviderDeactivationDate"] == "2020-12-31"
    assert "messageProviderPlannedMaintenance" not in providers["fedfin"]
    fedfin = caller.http.get(providers["fedfin"]["messageProviderUrl"] + "ebox", headers=caller.headers)
    assert fedfin.status_code == 200
    gone = caller.http.get(providers["legacy"]["messageProviderUrl"] + "ebox", headers=caller.headers)
    assert gone.status_code == 404
    one = caller.http.get(f"{sandbox.providers_url}/fedfin", headers=caller.headers)
    assert one.json() == providers["fedfin"]
    missing = caller.http.get(f"{sandbox.providers_url}/nope", headers=caller.headers)
    assert (missing.status_code, missing.json()["environment"]) == (404, "SIMULATION")


def test_provider_in_maintenance(sandbox, http, caller) -> None:
    switched = http.post(f"{sandbox.admin_url}/providers/fedfin/maintenance", json={"duration": 600})
    assert switched.json() == {"providerId": "fedfin", "maintenance": True}
    providers = {p["messageProviderId"]: p for p in http.get(sandbox.providers_url, headers=caller.headers).json()}
    window = providers["fedfin"]["messageProviderPlannedMaintenance"]
    assert len(window) == 1
    assert window[0]["startDate"] < window[0]["endDate"]
    down = caller.get("/ebox", provider="fedfin")
    assert (down.status_code, down.json()["code"]) == (503, "SERVICE_UNAVAILABLE")
    assert 0 < int(down.headers["retry-after"]) <= 600
    assert caller.get("/ebox", provider="nsso").status_code == 200  # the other DP is unaffected
    http.post(f"{sandbox.admin_url}/providers/fedfin/maintenance", json={"enabled": False})
    assert caller.get("/ebox", provider="fedfin").status_code == 200


def test_registry_scope_required(sandbox, make_caller) -> None:
    caller = make_caller(0, scopes=["scope:document:management:consult:ws-eboxrestentreprise:documentconsumer"])
    response = caller.http.get(sandbox.providers_url, headers=caller.headers)
    assert (response.status_code, response.json()["code"]) == (403, "MISSING_SCOPE")
    assert REGISTRY_SCOPE in response.json()["message"]
    assert caller.http.get(sandbox.providers_url).status_code == 401
