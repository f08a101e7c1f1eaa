"""The chaos run's Exact ground-truth check (:func:`check_exact`) counts what it should: a sandbox
holding each document once passes; a second copy, a second attachment, a document in another
enterprise's division, a missing or wrong attachment and a missing document are each caught."""

from __future__ import annotations

import base64
import hashlib

import pytest
from eboxd_exact.exporter import marker_of, subject_of
from eboxd_exact.sandbox import ExactSandbox

from daemon.plugins import ExportDocument
from tests.reliability.chaos_exact import check_exact

DIVISIONS = {"0200000101": 124132, "0200000202": 124133}


def _document(document_id: int, number: str) -> ExportDocument:
    content = f"letter {document_id}".encode()
    return ExportDocument(document_id=document_id, enterprise_number=number, enterprise_name=number,
                          message_id=f"m-{document_id}", sender="FOD", subject=f"Brief {document_id}",
                          published_at=None, received_at=None, file_name="brief.pdf", media_type="application/pdf",
                          size=len(content), sha256=hashlib.sha256(content).hexdigest(), language="nl")


def _deliver(exact: ExactSandbox, doc: ExportDocument, *, division: int | None = None) -> None:
    """What the exporter leaves in Exact for ``doc``: a document with its marker, one attachment."""
    division = division or DIVISIONS[doc.enterprise_number]
    created = exact._create_document(division, {"Subject": subject_of(doc, marker_of(doc)), "Type": 55})
    exact._create_attachment(division, {"Document": created["ID"], "FileName": "brief.pdf",
                                        "Attachment": base64.b64encode(f"letter {doc.document_id}".encode()).decode()})


@pytest.fixture
def docs() -> list[ExportDocument]:
    # Two of each Exact enterprise, and one of an enterprise not exporting to Exact.
    return [_document(1, "0200000101"), _document(2, "0200000101"), _document(3, "0200000202"),
            _document(4, "0200000202"), _document(5, "0200000303")]


def _sandbox(docs: list[ExportDocument]) -> ExactSandbox:
    exact = ExactSandbox(seed=1)
    for doc in docs[:4]:
        _deliver(exact, doc)
    return exact


def test_each_document_once_in_its_division_passes(docs: list[ExportDocument]) -> None:
    check = check_exact(_sandbox(docs), DIVISIONS, docs)
    assert (check.documents, check.lost, check.duplicated, check.details) == (4, 0, 0, [])


@pytest.mark.parametrize(("damage", "lost", "duplicated"), [
    ("second copy", 0, 1), ("second attachment", 0, 1), ("other enterprise's division", 0, 1),
    ("not an Exact enterprise", 0, 1), ("missing", 1, 0), ("no attachment", 1, 0), ("wrong bytes", 1, 0)])
def test_damage_is_counted(docs: list[ExportDocument], damage: str, lost: int, duplicated: int) -> None:
    exact = _sandbox(docs)
    if damage == "second copy":
        _deliver(exact, docs[0])
    elif damage == "second attachment":  # on the document already there
        first = exact.documents[0]["ID"]
        exact._create_attachment(DIVISIONS["0200000101"], {"Document": first, "FileName": "brief.pdf",
                                                           "Attachment": base64.b64encode(b"letter 1").decode()})
    elif damage == "other enterprise's division":
        _deliver(exact, docs[0], division=DIVISIONS["0200000202"])
    elif damage == "not an Exact enterprise":
        _deliver(exact, docs[4], division=DIVISIONS["0200000101"])
    elif damage == "missing":
        exact.documents.pop()
        exact.attachments.pop()
    elif damage == "no attachment":  # its only Exact document has none: not delivered
        exact.attachments.pop(0)
    elif damage == "wrong bytes":
        exact.attachments[0]["_data"] = b"something else"
    check = check_exact(exact, DIVISIONS, docs)
    assert (check.lost, check.duplicated) == (lost, duplicated), check.details
    assert check.details
