"""EPC069-12 payloads of payment requests, checked field by field, and the QR code segno builds."""

from __future__ import annotations

from decimal import Decimal

import pytest
import segno

from daemon.db.models import PaymentRequest
from daemon.payments.manage import EPC_MAX_BYTES, PaymentRefused, epc_payload


def request(**kwargs: object) -> PaymentRequest:
    values: dict[str, object] = {"id": 7, "amount": Decimal("1234.50"), "currency": "EUR",
                                 "iban": "BE68539007547034", "bic": None, "reference": "010806817183",
                                 "reference_kind": "ogm", "beneficiary_name": "SPF Financiën"}
    values.update(kwargs)
    return PaymentRequest(**values)


def fields(payload: bytes) -> list[str]:
    return payload.decode("utf-8").split("\n")


def test_ogm_in_structured_field_utf8_no_bic() -> None:
    assert fields(epc_payload(request())) == [
        "BCD", "002", "1", "SCT", "", "SPF Financiën", "BE68539007547034", "EUR1234.50", "", "010806817183"]


def test_rf_and_bic() -> None:
    got = fields(epc_payload(request(reference="RF18539007547034", reference_kind="rf", bic="gkccbebb")))
    assert got[4] == "GKCCBEBB"
    assert got[9] == "RF18539007547034"
    assert len(got) == 10


def test_free_reference_goes_unstructured_and_no_reference_drops_fields() -> None:
    got = fields(epc_payload(request(reference="Factuur 17", reference_kind="free")))
    assert got[9:] == ["", "Factuur 17"]
    assert fields(epc_payload(request(reference=None, reference_kind=None)))[-1] == "EUR1234.50"


@pytest.mark.parametrize(("changes", "needle"), [
    ({"iban": None}, "has no IBAN"),
    ({"currency": "USD"}, "euros only"),
    ({"amount": None}, "has no amount"),
    ({"amount": Decimal("1000000000.00")}, "outside"),
    ({"amount": Decimal("0.00")}, "outside"),
    ({"beneficiary_name": None}, "beneficiary name"),
    ({"iban": "BE68539007547035"}, "check digits"),
])
def test_refusals(changes: dict[str, object], needle: str) -> None:
    with pytest.raises(PaymentRefused, match=needle):
        epc_payload(request(**changes))


def test_size_limit_and_qr_parameters() -> None:
    longest = request(beneficiary_name="é" * 70, reference="x" * 35, reference_kind="free", bic="GKCCBEBBXXX")
    payload = epc_payload(longest)
    assert len(payload) <= EPC_MAX_BYTES
    code = segno.make_qr(payload, error="m", boost_error=False)
    assert code.error == "M"
    assert code.version <= 13
