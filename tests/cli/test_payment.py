"""``eboxd payment extract``: the sandbox's FR/NL/DE letters, ambiguous letters, and files that are no
readable PDF (one line, exit code 1, no traceback); ``eboxd payment qr``'s PNG and SVG read back with a
real QR decoder."""

from __future__ import annotations

import functools
import io
import json
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.banking import parse_ogm
from daemon.db.models import Document, Enterprise, Message, PaymentRequest
from daemon.sandbox.ebox.letters import LANGUAGES
from daemon.sandbox.ebox.seed import SeedLetter, build_catalogue
from daemon.sandbox.pdf import Line, render_pdf
from tests.cli.conftest import Run, assert_one_line_error
from tests.payments.test_epc import decode_qr, epc_fields, png_to_grey, svg_to_grey

REPO = Path(__file__).resolve().parents[2]
FLAT_KEYS = {"amount", "currency", "iban", "bic", "reference", "due_date", "beneficiary", "needs_review"}


@functools.cache
def letters() -> tuple[SeedLetter, ...]:
    return build_catalogue(0, anchor=date(2026, 3, 1), enterprises=6).letters


def payment_letters(language: str) -> list[SeedLetter]:
    return [letter for letter in letters() if letter.language == language and letter.payment is not None][:3]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def encrypted(pdf: bytes, user_password: str, owner_password: str = "owner") -> bytes:
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password, owner_password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize("language", LANGUAGES)
def test_json_of_sandbox_letters_matches_what_they_ask(run: Run, tmp_path: Path, language: str):
    chosen = payment_letters(language)
    assert chosen, f"no {language} payment letter in the catalogue"
    for letter in chosen:
        expected = letter.payment
        assert expected is not None
        result = run("payment", "extract", str(write(tmp_path, "letter.pdf", letter.main_pdf)), "--json")
        assert result.exit_code == 0, result.stderr
        out = json.loads(result.stdout)
        assert out["amount"] == f"{expected.amount:.2f}"
        assert out["currency"] == expected.currency
        assert out["iban"] == expected.iban
        assert out["bic"] == expected.bic
        assert out["reference"] == parse_ogm(expected.ogm).display
        assert out["reference_kind"] == "ogm"
        assert out["due_date"] == expected.due_date.isoformat()
        assert out["beneficiary"] == PdfReader(io.BytesIO(letter.main_pdf)).metadata.author
        assert out["needs_review"] is False
        assert out["is_payment"] is True
        for name in FLAT_KEYS - {"needs_review"}:
            assert out["fields"][name]["source"] == "pdf"
            assert 0 < out["fields"][name]["confidence"] <= 1
        assert out["fields"]["reference"]["canonical"] == parse_ogm(expected.ogm).digits


@pytest.mark.parametrize("language", LANGUAGES)
def test_table_shows_every_field_with_source_and_confidence(run: Run, tmp_path: Path, language: str):
    letter = payment_letters(language)[0]
    assert letter.payment is not None
    result = run("payment", "extract", str(write(tmp_path, f"{language}.pdf", letter.main_pdf)))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"{language}.pdf: payment requested"
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:5]]
            for line in result.stdout.splitlines() if line.startswith("│")}
    assert set(rows) == {"amount", "currency", "iban", "bic", "reference", "due_date", "beneficiary"}
    assert rows["amount"][0] == f"{letter.payment.amount:.2f}"
    assert rows["iban"][0] == letter.payment.iban
    assert rows["reference"][0] == f"{parse_ogm(letter.payment.ogm).display} (ogm)"
    for value, source, confidence in rows.values():
        assert value
        assert source == "pdf"
        assert 0 < float(confidence) <= 1
    assert "review:" not in result.stdout


def test_letter_without_payment(run: Run, tmp_path: Path):
    letter = next(letter for letter in letters() if letter.payment is None)
    path = write(tmp_path, "info.pdf", letter.main_pdf)
    out = json.loads(run("payment", "extract", str(path), "--json").stdout)
    assert out["is_payment"] is False
    assert out["needs_review"] is False
    assert out["amount"] is None
    assert out["fields"]["amount"] is None
    assert set(out) >= FLAT_KEYS
    text = run("payment", "extract", str(path))
    assert text.exit_code == 0
    assert text.stdout.startswith("info.pdf: no payment requested")


def test_ambiguous_letter_lists_its_review_reasons(run: Run, tmp_path: Path):
    pdf = render_pdf([Line("SPF Finances", bold=True), "Montant à payer avant le 15/03/2026 : 1.234,56 EUR",
                      "Montant à payer après le 15/03/2026 : 1.300,00 EUR",
                      "Compte BE76 7349 3357 5495  Communication structurée +++123/4567/89002+++"])
    path = write(tmp_path, "two-amounts.pdf", pdf)
    out = json.loads(run("payment", "extract", str(path), "--json").stdout)
    assert out["needs_review"] is True
    assert out["amount"] == "1234.56"
    assert out["fields"]["amount"]["alternatives"] == ["1300.00"]
    assert any(reason["field"] == "amount" and reason["code"] == "ambiguous" for reason in out["review_reasons"])
    result = run("payment", "extract", str(path))
    assert result.exit_code == 0
    assert "payment requested, needs review" in result.stdout
    amount_row = next(line for line in result.stdout.splitlines() if line.startswith("│ amount "))
    assert "1234.56; also seen: 1300.00" in amount_row
    assert any(line.startswith("review: amount: ") and "[ambiguous]" in line for line in result.stdout.splitlines())


def test_pdf_with_only_an_owner_password_is_read(run: Run, tmp_path: Path):
    letter = payment_letters("nl")[0]
    assert letter.payment is not None
    path = write(tmp_path, "owner-only.pdf", encrypted(letter.main_pdf, user_password=""))
    result = run("payment", "extract", str(path), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["iban"] == letter.payment.iban


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "is not a PDF (the file is empty)"),
        (b"hello, I am a text file\n", "is not a PDF (no %PDF- header)"),
        (b"PK\x03\x04" + bytes(200), "is not a PDF"),
        (b"%PDF-1.4\n1 0 obj\n<<", "cannot read the PDF"),
        ("encrypted", "the PDF is encrypted with a password"),
        ("truncated", "cannot read the PDF"),
    ],
)
def test_unreadable_files_give_one_line_and_exit_1(run: Run, tmp_path: Path, data: bytes | str, needle: str):
    pdf = payment_letters("fr")[0].main_pdf
    if data == "encrypted":
        data = encrypted(pdf, "secret")
    elif data == "truncated":
        data = pdf[: len(pdf) // 3]
    assert isinstance(data, bytes)
    path = write(tmp_path, "bad.pdf", data)
    for extra in ([], ["--json"]):
        result = run("payment", "extract", str(path), *extra)
        assert_one_line_error(result, 1, str(path), needle)
        assert result.stdout == ""


def test_missing_file_is_a_usage_error(run: Run, tmp_path: Path):
    result = run("payment", "extract", str(tmp_path / "nope.pdf"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_through_the_real_entry_point(tmp_path: Path):
    """``daemon.cli.main`` with these commands added: pypdf's own warnings do not leak to stderr."""
    script = ("import sys\nfrom daemon.cli import cli, main, messages, payment\n"
              "for c in (*messages.COMMANDS, *payment.COMMANDS):\n    cli.add_command(c)\nmain(sys.argv[1:])\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBOXD_")}
    bad = write(tmp_path, "bad.pdf", b"%PDF-1.7\ngarbage without xref or EOF marker")
    good = write(tmp_path, "good.pdf", payment_letters("de")[0].main_pdf)
    broken = subprocess.run([sys.executable, "-c", script, "payment", "extract", str(bad)], capture_output=True,
                            text=True, env={**env, "PYTHONPATH": str(REPO)}, timeout=60, check=False)
    assert broken.returncode == 1
    assert broken.stderr.strip().splitlines() == [f"eboxd: error: {bad}: cannot read the PDF: "
                                                  f"{broken.stderr.split('cannot read the PDF: ')[1].strip()}"]
    ok = subprocess.run([sys.executable, "-c", script, "payment", "extract", "--json", str(good)],
                        capture_output=True, text=True, env={**env, "PYTHONPATH": str(REPO)}, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["currency"] == "EUR"


# --- `eboxd payment qr`: the written image read back with a real QR decoder ---------------------

QR_REQUESTS = {
    # label: (payment request columns, EPC fields expected from the image)
    "ogm": ({"amount": Decimal("1234.56"), "iban": "BE76734933575495", "bic": None, "reference": "010806817183",
             "reference_kind": "ogm", "beneficiary_name": "SPF Finances"},
            {"name": "SPF Finances", "iban": "BE76734933575495", "amount": "EUR1234.56",
             "structured_reference": "010806817183"}),
    "rf": ({"amount": Decimal("10.00"), "iban": "BE68539007547034", "bic": "GKCCBEBB",
            "reference": "RF18539007547034", "reference_kind": "rf", "beneficiary_name": "Ville de Liège"},
           {"bic": "GKCCBEBB", "name": "Ville de Liège", "iban": "BE68539007547034", "amount": "EUR10.00",
            "structured_reference": "RF18539007547034"}),
    "free": ({"amount": Decimal("0.01"), "iban": "BE68539007547034", "bic": None, "reference": "Factuur 17",
              "reference_kind": "free", "beneficiary_name": "Brouwerij Het Anker"},
             {"name": "Brouwerij Het Anker", "iban": "BE68539007547034", "amount": "EUR0.01",
              "unstructured_text": "Factuur 17"}),
    "longest": ({"amount": Decimal("999999999.99"), "iban": "MT84MALT011000012345MTLCAST001S", "bic": "GKCCBEBBXXX",
                 "reference": "é" * 35, "reference_kind": "free", "beneficiary_name": "Ł" * 70},
                {"bic": "GKCCBEBBXXX", "name": "Ł" * 70, "iban": "MT84MALT011000012345MTLCAST001S",
                 "amount": "EUR999999999.99", "unstructured_text": "é" * 35}),
}


@pytest.fixture
def qr_documents(db_env: dict[str, str], engine: Engine) -> dict[str, int]:
    """label → document id of a stored payment request from QR_REQUESTS."""
    documents = {}
    with Session(engine) as session, session.begin():
        company = Enterprise(number="0403170701", name="Alpha")
        session.add(company)
        session.flush()
        for label, (columns, _) in QR_REQUESTS.items():
            message = Message(enterprise_id=company.id, provider_id="p", ebox_message_id=label, subject=label)
            session.add(message)
            session.flush()
            document = Document(message_id=message.id, attachment_id="a", file_name=f"{label}.pdf")
            session.add(document)
            session.flush()
            session.add(PaymentRequest(enterprise_id=company.id, message_id=message.id, document_id=document.id,
                                       status="open", field_sources={}, **columns))
            documents[label] = document.id
    return documents


@pytest.mark.parametrize("label", list(QR_REQUESTS))
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_qr_image_decodes_to_the_payment_request(run: Run, qr_documents: dict[str, int], tmp_path: Path,
                                                 label: str, suffix: str):
    target = tmp_path / f"pay{suffix}"
    result = run("payment", "qr", str(qr_documents[label]), "-o", str(target), "--scale", "3")
    assert result.exit_code == 0, result.stderr
    data = target.read_bytes()
    decoded = decode_qr(png_to_grey(data) if suffix == ".png" else svg_to_grey(data))
    fields = epc_fields(decoded)
    assert fields == {**dict.fromkeys(fields, ""), "service_tag": "BCD", "version": "002", "charset": "1",
                      "identification": "SCT", **QR_REQUESTS[label][1]}
    assert f"{len(decoded)} bytes" in result.stdout
