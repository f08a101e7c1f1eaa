"""SOAP 1.1 for Yuki's Archive service: the operations we use, envelopes, results and faults.

Shared by the client and the sandbox so both speak exactly one dialect. ``OPERATIONS`` lists the
parameters of each operation in WSDL order with whether the WSDL requires them (``minOccurs=1``);
a test checks this table against Yuki's WSDL (``specs/accounting-wsdl/``), which we do not ship.

Parsing refuses DTDs (a SOAP 1.1 message must not carry one), which rules out entity expansion
and external entities without a new dependency; the bodies are parsed by the stdlib's expat.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn
from xml.parsers import expat
from xml.sax.saxutils import escape

__all__ = [
    "CONTENT_TYPE",
    "OPERATIONS",
    "SOAP_NS",
    "YUKI_NS",
    "Fault",
    "MalformedSoap",
    "Param",
    "envelope",
    "fault_envelope",
    "parse_fault",
    "parse_request",
    "parse_result",
    "result_envelope",
    "soap_action",
]

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
YUKI_NS = "http://www.theyukicompany.com/"
CONTENT_TYPE = "text/xml; charset=utf-8"


@dataclass(frozen=True)
class Param:
    name: str
    required: bool = False  # minOccurs=1 in the WSDL: always sent, never empty


OPERATIONS: dict[str, tuple[Param, ...]] = {
    "Authenticate": (Param("accessKey"),),
    "Domains": (Param("sessionID"),),
    "SetCurrentDomain": (Param("sessionID"), Param("domainID")),
    "Administrations": (Param("sessionID"),),
    "DocumentFolders": (Param("sessionID"),),
    "UploadDocumentWithData": (
        Param("sessionID"), Param("fileName"), Param("data"), Param("folder", True), Param("administrationID"),
        Param("currency"), Param("amount", True), Param("costCategory"), Param("paymentMethod", True),
        Param("project"), Param("remarks"),
    ),
    "SearchDocuments": (
        Param("sessionID"), Param("searchOption", True), Param("searchText"), Param("folderID", True),
        Param("tabID", True), Param("sortOrder", True), Param("startDate", True), Param("endDate", True),
        Param("numberOfRecords", True), Param("startRecord", True),
    ),
}
"""The Archive operations eboxd calls (and the sandbox answers), parameters in WSDL order."""

# Operations whose result is a string (``<OpResult>text</OpResult>``); the others return XML.
STRING_RESULTS = frozenset({"Authenticate", "UploadDocumentWithData"})


class MalformedSoap(ValueError):
    """Not a SOAP 1.1 envelope we understand (or one carrying a DTD)."""


@dataclass(frozen=True)
class Fault:
    code: str  # soap:Client, soap:Server
    string: str
    detail: str = ""


def soap_action(operation: str) -> str:
    """The quoted ``SOAPAction`` header value."""
    return f'"{YUKI_NS}{operation}"'


def envelope(operation: str, values: dict[str, str | None]) -> bytes:
    """A request for ``operation``: children in WSDL order, absent optionals omitted."""
    params = OPERATIONS[operation]
    unknown = set(values) - {p.name for p in params}
    if unknown:
        raise ValueError(f"{operation} has no parameter {sorted(unknown)[0]!r}")
    parts = []
    for param in params:
        value = values.get(param.name)
        if value is None:
            if param.required:
                raise ValueError(f"{operation} needs {param.name}")
            continue
        parts.append(f"<{param.name}>{escape(value)}</{param.name}>")
    return _wrap(f'<{operation} xmlns="{YUKI_NS}">{"".join(parts)}</{operation}>')


def _wrap(body: str) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP_NS}" '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
            f"<soap:Body>{body}</soap:Body></soap:Envelope>").encode()


def result_envelope(operation: str, result: str | ET.Element | None) -> bytes:
    """A response: ``<OpResponse><OpResult>…</OpResult></OpResponse>`` (text or an XML fragment)."""
    if result is None:
        inner = ""
    elif isinstance(result, str):
        inner = f"<{operation}Result>{escape(result)}</{operation}Result>"
    else:
        inner = f"<{operation}Result>{ET.tostring(result, encoding='unicode')}</{operation}Result>"
    return _wrap(f'<{operation}Response xmlns="{YUKI_NS}">{inner}</{operation}Response>')


def fault_envelope(fault: Fault) -> bytes:
    detail = f"<detail>{escape(fault.detail)}</detail>" if fault.detail else "<detail />"
    return _wrap(f"<soap:Fault><faultcode>{escape(fault.code)}</faultcode>"
                 f"<faultstring>{escape(fault.string)}</faultstring>{detail}</soap:Fault>")


def _refuse_dtd(*_args: object) -> NoReturn:
    raise MalformedSoap("SOAP messages must not contain a DTD")


def _without_dtd(body: bytes) -> None:
    """Refuse a document type declaration (and with it entity definitions) before building a tree."""
    checker = expat.ParserCreate()
    checker.StartDoctypeDeclHandler = _refuse_dtd
    checker.EntityDeclHandler = _refuse_dtd
    try:
        checker.Parse(body, True)
    except expat.ExpatError as exc:
        raise MalformedSoap(f"not XML: {exc}") from None


def _parse(body: bytes) -> ET.Element:
    _without_dtd(body)
    root = ET.fromstring(body)  # noqa: S314 - no DTD (checked above): no entity expansion possible
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        raise MalformedSoap(f"not a SOAP 1.1 envelope: {root.tag}")
    found = root.find(f"{{{SOAP_NS}}}Body")
    if found is None or len(found) != 1:
        raise MalformedSoap("the SOAP body must hold exactly one element")
    return found[0]


def parse_request(body: bytes) -> tuple[str, list[tuple[str, str]]]:
    """The operation and its children in document order (sandbox side); names keep their case."""
    element = _parse(body)
    namespace, _, operation = element.tag.rpartition("}")
    if namespace != f"{{{YUKI_NS}":
        raise MalformedSoap(f"{operation} is not in the Yuki namespace")
    children = []
    for child in element:
        child_ns, _, name = child.tag.rpartition("}")
        if child_ns != f"{{{YUKI_NS}":
            raise MalformedSoap(f"{name} is not in the Yuki namespace")
        children.append((name, child.text or ""))
    return operation, children


def parse_fault(body: bytes) -> Fault | None:
    """The ``soap:Fault`` of a response, if it is one."""
    try:
        element = _parse(body)
    except MalformedSoap:
        return None
    if element.tag != f"{{{SOAP_NS}}}Fault":
        return None
    detail = element.find("detail")
    return Fault(code=(element.findtext("faultcode") or "").strip(),
                 string=(element.findtext("faultstring") or "").strip(),
                 detail="".join(detail.itertext()).strip() if detail is not None else "")


def parse_result(operation: str, body: bytes) -> str | ET.Element | None:
    """The result of a successful response: text for string results, else the first XML child."""
    element = _parse(body)
    if element.tag != f"{{{YUKI_NS}}}{operation}Response":
        raise MalformedSoap(f"expected {operation}Response, got {element.tag}")
    result = element.find(f"{{{YUKI_NS}}}{operation}Result")
    if result is None:
        return None
    if operation in STRING_RESULTS:
        return result.text or ""
    return result[0] if len(result) else None


def children_named(element: ET.Element | None, names: Sequence[str]) -> list[ET.Element]:
    """Descendants whose local name is one of ``names`` (results are namespace-free or Yuki's)."""
    if element is None:
        return []
    wanted = set(names)
    return [e for e in element.iter() if e.tag.rpartition("}")[2] in wanted]
