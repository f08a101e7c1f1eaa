"""The client against the e-Box sandbox over real loopback HTTP (``daemon.sandbox``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import daemon.sandbox as sandbox_module
from daemon import ebox
from tests.sandbox.specvalidate import stats, validating_hook


def validate_json_responses(response: httpx.Response) -> None:
    """Every JSON answer of the sandbox must match the vendored official contract."""
    if "json" in response.headers.get("content-type", ""):
        validating_hook(response)


def validated_http(timeout: float = 10) -> httpx.Client:
    return httpx.Client(timeout=timeout, event_hooks={"response": [validate_json_responses]})


def EboxClient(*args: Any, **kwargs: Any) -> ebox.EboxClient:
    return ebox.EboxClient(*args, http_client=validated_http(), **kwargs)


def TokenProvider(*args: Any, **kwargs: Any) -> ebox.TokenProvider:
    return ebox.TokenProvider(*args, http_client=validated_http(), **kwargs)


NO_RETRY_WAIT = ebox.RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=5.0)


@pytest.fixture(scope="module")
def sandbox():
    with sandbox_module.serve_sandbox(seed=7) as running:
        yield running


@pytest.fixture(autouse=True)
def responses_are_validated(sandbox):
    """A test that talked to the sandbox had its JSON answers checked against the contract."""
    requests_before, validated_before = len(sandbox.requests()), stats["validated"]
    yield
    if len(sandbox.requests()) > requests_before:
        assert stats["validated"] > validated_before, "no sandbox response was validated in this test"


@pytest.fixture(scope="module")
def identities(sandbox):
    """One key + self-signed certificate per seeded enterprise (generated once: keys are slow)."""
    return {e.number: ebox.generate_identity(e.name, e.number, key_size=2048) for e in sandbox.catalogue.enterprises}


@pytest.fixture
def enterprise(sandbox):
    sandbox.reset(clients=True)
    sandbox.clear_faults()
    return sandbox.catalogue.enterprises[0]


@pytest.fixture
def environment(sandbox):
    return ebox.resolve_environment("sandbox", base_url=sandbox.url)


@pytest.fixture
def sleeps():
    return []


def onboard(sandbox, identity, number, **options) -> ebox.Credential:
    client_id = sandbox.register_client(identity.certificate_pem(), number, **options)
    return ebox.Credential.from_identity(client_id, identity)


@pytest.fixture
def client(sandbox, identities, enterprise, environment, sleeps):
    credential = onboard(sandbox, identities[enterprise.number], enterprise.number)
    with EboxClient(credential, environment, retry=NO_RETRY_WAIT, sleep=sleeps.append) as c:
        yield c


def letters_of(sandbox, number, provider="nsso"):
    return [
        letter
        for letter in sandbox.catalogue.letters
        if letter.enterprise_number == number and letter.provider_id == provider
    ]


def test_onboarding_certificate_token_summary(sandbox, enterprise, environment):
    identity = ebox.generate_identity(enterprise.name, enterprise.number)  # default 3072-bit key
    credential = onboard(sandbox, identity, enterprise.number)
    assert credential.client_id.startswith("self_service_chaman_")
    with TokenProvider(environment) as tokens:
        token = tokens.get_token(credential)
        assert token.expires_at - token.refresh_at == 60
    with EboxClient(credential, environment) as client:
        summary = client.summary()
    assert summary.number_of_messages == len(letters_of(sandbox, enterprise.number))
    assert summary.number_of_unread_messages == summary.number_of_messages


def test_list_every_page(client, sandbox, enterprise):
    expected = {letter.message_id for letter in letters_of(sandbox, enterprise.number)}
    ids = [m.message_id for m in client.iter_messages(page_size=2)]
    assert len(ids) == len(set(ids))
    assert set(ids) == expected
    first = client.list_messages(page=1, page_size=2)
    assert first.total_items == len(expected)
    receipts = [m.receipt_date for m in client.iter_messages()]
    assert receipts == sorted(receipts, reverse=True)


def test_filters_and_bad_query(client, sleeps):
    assert list(client.iter_messages(ebox.MessageQuery(read_status=False)))
    assert not list(client.iter_messages(ebox.MessageQuery(received_after=datetime(2060, 3, 5, tzinfo=UTC))))
    with pytest.raises(ebox.BadRequest) as info:
        client._session.get_json(client.registry_url + "ebox/messages", params={"q": "x"})  # no qlang
    assert info.value.code
    assert sleeps == []


def test_download_main_content_with_digest(client, tmp_path):
    message = next(client.iter_messages())
    main = message.main_attachment
    assert main is not None
    assert main.digest is not None
    result = client.download_attachment(message.message_id, main, tmp_path / main.file_name)
    assert result.digest_verified
    assert (tmp_path / main.file_name).read_bytes()[:5] == b"%PDF-"
    assert client.get_message(message.message_id).read_status is True  # main content marks it read
    before = client.summary().number_of_unread_messages
    assert before == client.summary().number_of_messages - 1


def test_truncated_download_leaves_no_file(client, sandbox, tmp_path):
    message = next(client.iter_messages())
    sandbox.add_fault("truncate", count=1)
    with pytest.raises(ebox.TruncatedDownload):
        client.download_attachment(message.message_id, message.main_attachment, tmp_path / "doc.pdf")
    assert list(tmp_path.iterdir()) == []


def test_payment_data(client, sandbox, identities, environment):
    nsso_message = next(client.iter_messages())
    assert client.get_payment_data(nsso_message.message_id) is None  # NSSO publishes none
    with_payment = [
        letter for letter in sandbox.catalogue.letters if letter.payment_data and letter.provider_id == "fedfin"
    ]
    assert with_payment, "the seed has fedfin letters with paymentData"
    letter = with_payment[0]
    credential = onboard(sandbox, identities[letter.enterprise_number], letter.enterprise_number)
    with EboxClient(credential, environment) as other:
        fedfin = next(p for p in other.select_providers().usable if p.provider_id == "fedfin")
        payment = other.for_provider(fedfin).get_payment_data(letter.message_id)
    assert payment is not None
    assert payment.amount == float(letter.payment.amount)
    assert payment.currency == letter.payment.currency
    assert payment.reference == {"type": "OGM", "value": letter.payment.ogm}
    assert payment.iban.replace(" ", "") == letter.payment.iban.replace(" ", "")


def test_hide_and_unhide(client):
    message = next(client.iter_messages())
    client.hide([message.message_id])
    assert client.get_message(message.message_id).visible is False
    hidden = [m.message_id for m in client.iter_messages(ebox.MessageQuery(visible=False))]
    assert hidden == [message.message_id]
    client.unhide([message.message_id])
    assert client.get_message(message.message_id).visible is True
    with pytest.raises(ebox.NotFound):
        client.hide(["00000000-0000-4000-8000-000000000000"])


def test_reference_data(client):
    message = next(client.iter_messages())
    message_type = client.reference.message_type(message.message_type_id)
    assert message_type.name.best()
    organization = client.reference.sender_organization(message.sender_organization_id)
    assert organization.short_name.best()
    assert client.reference.message_types()


def test_forged_assertion_is_reported(sandbox, identities, enterprise, environment):
    genuine = onboard(sandbox, identities[enterprise.number], enterprise.number)
    forged = ebox.Credential(genuine.client_id, ebox.generate_private_key(2048))
    with TokenProvider(environment) as tokens, pytest.raises(ebox.InvalidClientAssertion) as info:
        tokens.get_token(forged)
    assert "signature" in info.value.reason
    assert info.value.status_code == 401


def test_unknown_client_and_wrong_audience(sandbox, identities, enterprise, environment):
    stranger = ebox.Credential("self_service_chaman_1_nobody0000", identities[enterprise.number].private_key)
    with TokenProvider(environment) as tokens, pytest.raises(ebox.UnknownClient):
        tokens.get_token(stranger)
    genuine = onboard(sandbox, identities[enterprise.number], enterprise.number)
    wrong_aud = ebox.resolve_environment("sandbox", base_url=sandbox.url, audience="https://elsewhere/token")
    with TokenProvider(wrong_aud) as tokens, pytest.raises(ebox.InvalidClientAssertion, match="aud"):
        tokens.get_token(genuine)


def test_expired_token_reauthenticates_once(client, sandbox):
    client.summary()
    sandbox.expire_tokens()
    assert client.summary().number_of_messages > 0
    assert client.tokens.refresh_count == 2


def test_transient_errors_are_retried(client, sandbox, sleeps):
    sandbox.add_fault("error", status=503, count=2, path="/ebox")
    assert client.summary().number_of_messages > 0
    assert len(sleeps) == 2
    sandbox.add_fault("throttle", retry_after=1, count=1, path="/ebox")
    client.summary()
    assert sleeps[-1] == 1.0


def test_missing_scope_is_forbidden(sandbox, identities, enterprise, environment):
    credential = onboard(
        sandbox, identities[enterprise.number], enterprise.number, scopes=[sandbox_module.ebox.REGISTRY_SCOPE]
    )
    with EboxClient(credential, environment) as client, pytest.raises(ebox.Forbidden) as info:
        client.summary()
    assert info.value.code


def test_service_provider_mode(sandbox, identities, environment):
    accountant, customer = sandbox.catalogue.enterprises[0], sandbox.catalogue.enterprises[1]
    sandbox.reset(clients=True)
    without = onboard(sandbox, identities[accountant.number], accountant.number)
    with EboxClient(without, environment, on_behalf_of=customer.number) as client:
        with pytest.raises(ebox.Forbidden) as info:
            client.summary()
        assert info.value.code == "NO_MANDATE"
    mandated = onboard(sandbox, identities[accountant.number], accountant.number, mandates=[customer.number])
    with EboxClient(mandated, environment, on_behalf_of=customer.number) as client:
        assert client.summary().number_of_messages == len(letters_of(sandbox, customer.number))


def test_provider_in_maintenance_is_skipped(client, sandbox):
    sandbox.set_maintenance("fedfin")
    try:
        selection = client.select_providers()
        assert "fedfin" not in [p.provider_id for p in selection.usable]
        assert [s.provider.provider_id for s in selection.in_maintenance] == ["fedfin"]
        fedfin = selection.in_maintenance[0].provider
        with pytest.raises(ebox.ServerError) as info:
            client.for_provider(fedfin).summary()
        assert info.value.status_code == 503
    finally:
        sandbox.set_maintenance("fedfin", enabled=False)


def test_corrupted_download_is_discarded(client, sandbox, tmp_path):
    message = next(client.iter_messages())
    sandbox.add_fault("corrupt", count=1)
    with pytest.raises(ebox.DigestMismatch):
        client.download_attachment(message.message_id, message.main_attachment, tmp_path / "doc.pdf")
    assert list(tmp_path.iterdir()) == []


def test_slow_answers_time_out_and_are_retried(sandbox, identities, enterprise, environment, sleeps):
    credential = onboard(sandbox, identities[enterprise.number], enterprise.number)
    with ebox.EboxClient(credential, environment, retry=NO_RETRY_WAIT, sleep=sleeps.append,
                         http_client=validated_http(timeout=0.5)) as client:
        client.summary()  # token first, so the fault hits the registry call
        sandbox.add_fault("slow", delay=1.5, count=1, path="/ebox")
        assert client.summary().number_of_messages > 0
        assert len(sleeps) == 1
        sandbox.add_fault("slow", delay=1.5, count=10, path="/ebox")
        with pytest.raises(ebox.EboxTimeout):
            client.summary()


def test_server_errors_give_up_after_the_bound(client, sandbox, sleeps):
    client.summary()  # the token first: only registry calls are counted below
    sandbox.add_fault("error", status=502, count=10, path="/ebox")
    before = len(sandbox.requests())
    with pytest.raises(ebox.ServerError) as info:
        client.summary()
    assert info.value.status_code == 502
    assert len(sandbox.requests()) - before == NO_RETRY_WAIT.max_attempts
    assert len(sleeps) == NO_RETRY_WAIT.max_attempts - 1


def test_not_found_is_not_retried_and_carries_the_server_message(client, sandbox, sleeps):
    client.summary()
    before = len(sandbox.requests())
    with pytest.raises(ebox.NotFound) as info:
        client.get_message("00000000-0000-4000-8000-000000000000")
    assert len(sandbox.requests()) - before == 1
    assert sleeps == []
    assert info.value.code
    assert info.value.server_message
    assert info.value.id


def test_connection_errors_are_retried_then_reported(identities, enterprise, sleeps):
    closed = ebox.resolve_environment("sandbox", base_url="http://127.0.0.1:9")
    credential = ebox.Credential("self_service_chaman_x", identities[enterprise.number].private_key)
    with EboxClient(credential, closed, retry=NO_RETRY_WAIT, sleep=sleeps.append) as client, \
            pytest.raises(ebox.EboxConnectionError):
        client.summary()
    assert len(sleeps) == NO_RETRY_WAIT.max_attempts - 1
