"""The sandbox's entities: what ``/api/v1/{division}/{service}/{Entity}`` lists and creates, the
OData list conventions (``d.results``, ``$filter``, ``$select``, ``$top``, 60 rows a page and an
absolute ``__next`` with ``$skiptoken``) and the validation Exact does on what is posted."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from daemon.sandbox.httpkit import Request, Response, json_response
from eboxd_exact.odata import compile_filter, to_exact_date

__all__ = ["BYTE_ARRAY", "DOCUMENT_TYPES", "PAGE_SIZE", "SELECT_REQUIRED", "ApiError", "Entities", "public"]

PAGE_SIZE = 60
DOCUMENT_TYPES = {10: ("Sales invoice", 1), 20: ("Purchase invoice", 2), 55: ("Miscellaneous", 99),
                  183: ("General attachment", 99)}
SELECT_REQUIRED = "Please add a $select or a $top=1 statement to the query string."
BYTE_ARRAY = ("Error processing request stream. The property name 'Attachment' specified for type "
              "'Exact.Web.Api.Models.Documents.DocumentAttachment' is not valid. Cannot convert to type 'Byte[]'.")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Entities:
    """The entity half of :class:`eboxd_exact.sandbox.ExactSandbox` (a mixin: the state is the sandbox's)."""

    divisions: dict[int, str]
    current_division: int
    users: dict[str, str]
    accounts: dict[int, list[dict[str, Any]]]
    journals: list[dict[str, Any]]
    documents: list[dict[str, Any]]
    attachments: list[dict[str, Any]]
    purchase_entries: list[dict[str, Any]]

    def _id(self) -> str:
        raise NotImplementedError

    def clock(self) -> dt.datetime:
        raise NotImplementedError

    def _operate(self, request: Request, division: int, parts: list[str], entity: str,
                 user_id: str) -> Response:
        if entity == "Me":  # the user whose token this is
            return self._list(request, [{"CurrentDivision": self.current_division, "UserID": user_id,
                                         "UserName": self.users[user_id], "FullName": "Sandbox User",
                                         "DivisionCustomer": self._id()}], select_required=False)
        service = parts[1]
        if request.method == "GET":
            rows = self._rows(division, service, entity)
            return self._list(request, rows, select_required=entity in ("Accounts", "Documents"))
        if request.method != "POST":
            raise ApiError(405, "Method not allowed")
        try:
            body = request.json()
        except ValueError:
            raise ApiError(400, "Error processing request stream. The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Error processing request stream. An object was expected.")
        creators = {("documents", "Documents"): self._create_document,
                    ("documents", "DocumentAttachments"): self._create_attachment,
                    ("purchaseentry", "PurchaseEntries"): self._create_purchase_entry}
        creator = creators.get((service, entity))
        if creator is None:
            raise ApiError(405, f"{service}/{entity} cannot be created in the sandbox")
        return json_response(201, {"d": public(creator(division, body))})

    def _rows(self, division: int, service: str, entity: str) -> list[dict[str, Any]]:
        tables: dict[tuple[str, str], Callable[[], list[dict[str, Any]]]] = {
            ("hrm", "Divisions"): lambda: [{"Code": code, "Description": name}
                                           for code, name in self.divisions.items()],
            ("documents", "DocumentTypes"): lambda: [
                {"ID": type_id, "Description": name, "DocumentIsCreatable": True, "TypeCategory": category}
                for type_id, (name, category) in DOCUMENT_TYPES.items()],
            ("documents", "Documents"): lambda: [d for d in self.documents if d["Division"] == division],
            ("documents", "DocumentAttachments"): lambda: [a for a in self.attachments if a["Division"] == division],
            ("crm", "Accounts"): lambda: self.accounts[division],
            ("financial", "Journals"): lambda: self.journals,
            ("purchaseentry", "PurchaseEntries"): lambda: [
                e for e in self.purchase_entries if e["Division"] == division],
        }
        table = tables.get((service, entity))
        if table is None:
            raise ApiError(404, f"Resource not found: {service}/{entity}")
        return table()

    def _list(self, request: Request, rows: list[dict[str, Any]], *, select_required: bool) -> Response:
        query = {k: v[-1] for k, v in request.query.items()}
        top = int(query["$top"]) if query.get("$top", "").isdigit() else None
        if select_required and "$select" not in query and top != 1:
            raise ApiError(400, SELECT_REQUIRED)
        if query.get("$filter"):
            predicate = compile_filter(query["$filter"])
            rows = [row for row in rows if predicate(row)]
        key = "ID" if rows and "ID" in rows[0] else None
        if key:
            rows = sorted(rows, key=lambda row: str(row[key]))
            skip = query.get("$skiptoken", "").removeprefix("guid'").rstrip("'").lower()
            if skip:
                rows = [row for row in rows if str(row[key]).lower() > skip]
        limit = min(top, PAGE_SIZE) if top is not None else PAGE_SIZE
        page = rows[:limit]
        payload: dict[str, Any] = {"results": [public(_selected(row, query.get("$select"))) for row in page]}
        if key and len(rows) > limit and (top is None or top > limit):
            following = {**query, "$skiptoken": f"guid'{page[-1][key]}'"}
            if top is not None:
                following["$top"] = str(top - limit)
            payload["__next"] = f"{request.base_url}{request.path}?{urlencode(following)}"
        return json_response(200, {"d": payload})

    def _create_document(self, division: int, body: dict[str, Any]) -> dict[str, Any]:
        type_id = body.get("Type")
        if not body.get("Subject") or type_id not in DOCUMENT_TYPES:
            raise ApiError(400, "Mandatory: Subject; Type must be a known document type")
        document = {"ID": self._id(), "Division": division, "Subject": str(body["Subject"]), "Type": type_id,
                    "TypeDescription": DOCUMENT_TYPES[type_id][0], "Category": DOCUMENT_TYPES[type_id][1],
                    "DocumentDate": body.get("DocumentDate"), "Account": body.get("Account"),
                    "AmountFC": body.get("AmountFC"), "Currency": body.get("Currency"), "Body": body.get("Body"),
                    "Created": self.clock()}
        document["DocumentViewUrl"] = f"https://sandbox.exact/docs/DocView.aspx?id={document['ID']}"
        self.documents.append(document)
        return document

    def _create_attachment(self, division: int, body: dict[str, Any]) -> dict[str, Any]:
        document = str(body.get("Document") or "").lower()
        if not any(d["ID"] == document and d["Division"] == division for d in self.documents):
            raise ApiError(400, "Document: the document does not exist in this division")
        try:
            data = base64.b64decode(str(body.get("Attachment") or ""), validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, BYTE_ARRAY) from None
        if not data or not body.get("FileName"):
            raise ApiError(400, "Mandatory: FileName, Attachment")
        attachment = {"ID": self._id(), "Division": division, "Document": document,
                      "FileName": str(body["FileName"]), "FileSize": float(len(data)), "Attachment": None,
                      "Url": f"https://sandbox.exact/docs/SysAttachment.aspx?ID={self._id()}", "_data": data}
        self.attachments.append(attachment)
        return attachment

    def _create_purchase_entry(self, division: int, body: dict[str, Any]) -> dict[str, Any]:
        supplier = str(body.get("Supplier") or "").lower()
        if not any(a["ID"] == supplier and a["IsSupplier"] for a in self.accounts[division]):
            raise ApiError(400, "Supplier: not a supplier of this division")
        if str(body.get("Journal")) not in {j["Code"] for j in self.journals if j["Type"] == 22}:
            raise ApiError(400, "Journal: not a purchase journal")
        lines = body.get("PurchaseEntryLines")
        if not isinstance(lines, list) or not lines:
            raise ApiError(400, "PurchaseEntryLines: at least one line")
        document = str(body.get("Document") or "").lower()
        if not document:  # as Exact: an empty Document is made
            document = self._create_document(division, {"Subject": body.get("Description") or "Purchase entry",
                                                        "Type": 20})["ID"]
        amount = sum(float(line.get("AmountFC") or line.get("AmountDC") or 0) for line in lines)
        entry = {"EntryID": self._id(), "Division": division, "Journal": str(body["Journal"]), "Supplier": supplier,
                 "EntryDate": body.get("EntryDate"), "YourRef": body.get("YourRef"),
                 "Description": body.get("Description"), "Document": document, "AmountDC": amount,
                 "Status": 20, "Type": 31 if amount < 0 else 30, "PurchaseEntryLines": lines}
        self.purchase_entries.append(entry)
        return entry


def _selected(row: dict[str, Any], select: str | None) -> dict[str, Any]:
    if not select:
        return row
    fields = [name.strip() for name in select.split(",") if name.strip()]
    return {name: row.get(name) for name in fields}


def public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: to_exact_date(v) if isinstance(v, dt.datetime) else v for k, v in row.items() if not k.startswith("_")}
