"""The SOAP layer shared by client and sandbox: envelopes in WSDL order, faults, no DTDs, and our
operation table checked against Yuki's own WSDL."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from eboxd_yuki import soap

REPO = Path(__file__).resolve().parents[3]
WSDL = REPO.parent / "shared" / "specs" / "accounting-wsdl" / "yuki-Archive.asmx.wsdl"
XS = "{http://www.w3.org/2001/XMLSchema}"
WSDL_NS = "{http://schemas.xmlsoap.org/wsdl/}"


def test_envelope_orders_children_omits_absent_optionals_and_escapes() -> None:
    body = soap.envelope("UploadDocumentWithData", {
        "remarks": "a < b & c", "paymentMethod": "0", "amount": "1.50", "folder": "7", "sessionID": "s",
        "fileName": "x.pdf", "data": "AA==", "currency": None})
    operation, children = soap.parse_request(body)
    assert operation == "UploadDocumentWithData"
    assert [name for name, _ in children] == ["sessionID", "fileName", "data", "folder", "amount", "paymentMethod",
                                              "remarks"]
    assert dict(children)["remarks"] == "a < b & c"


def test_envelope_refuses_missing_required_and_unknown_parameters() -> None:
    with pytest.raises(ValueError, match="needs amount"):
        soap.envelope("UploadDocumentWithData", {"folder": "7", "paymentMethod": "0"})
    with pytest.raises(ValueError, match="no parameter 'sessionId'"):
        soap.envelope("Administrations", {"sessionId": "x"})


def test_fault_round_trip_and_results() -> None:
    fault = soap.Fault("soap:Client", "Daily limit exceeded", "Every domain has 1000 free webservice calls a day.")
    assert soap.parse_fault(soap.fault_envelope(fault)) == fault
    assert soap.parse_fault(soap.result_envelope("Authenticate", "abc")) is None
    assert soap.parse_result("Authenticate", soap.result_envelope("Authenticate", "abc")) == "abc"
    tree = ET.Element("Administrations")
    ET.SubElement(tree, "Administration", ID="g1")
    result = soap.parse_result("Administrations", soap.result_envelope("Administrations", tree))
    assert isinstance(result, ET.Element)
    assert [e.get("ID") for e in soap.children_named(result, ["Administration"])] == ["g1"]


def test_documents_with_a_dtd_are_refused_before_parsing() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
            b'<AuthenticateResponse xmlns="http://www.theyukicompany.com/"><AuthenticateResult>&lol2;'
            b"</AuthenticateResult></AuthenticateResponse></soap:Body></soap:Envelope>")
    with pytest.raises(soap.MalformedSoap, match="DTD"):
        soap.parse_result("Authenticate", bomb)
    with pytest.raises(soap.MalformedSoap, match="not XML"):
        soap.parse_result("Authenticate", b"<html>oops")


@pytest.mark.skipif(not WSDL.exists(), reason=f"Yuki's WSDL is not shipped; expected at {WSDL}")
def test_operation_table_matches_yukis_wsdl() -> None:
    tree = ET.parse(WSDL)
    schema = tree.find(f"{WSDL_NS}types/{XS}schema")
    assert schema is not None
    actions = {op.get("soapAction") for op in tree.iter("{http://schemas.xmlsoap.org/wsdl/soap/}operation")}
    for operation, params in soap.OPERATIONS.items():
        element = schema.find(f"{XS}element[@name='{operation}']")
        assert element is not None, operation
        declared = [(e.get("name"), e.get("minOccurs") == "1")
                    for e in element.iter(f"{XS}element") if e is not element]
        assert declared == [(p.name, p.required) for p in params], operation
        assert soap.soap_action(operation).strip('"') in actions
