"""``eboxd messages list|show``, ``eboxd documents get`` and ``eboxd poll`` on rows inserted directly,
on SQLite and PostgreSQL, with the filesystem and the database document store."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from daemon.config import load_config
from daemon.db.models import Document, Enterprise, Message, PaymentRequest, PollState, utcnow
from daemon.enterprises import display
from daemon.poll.schedule import request_poll
from daemon.sandbox.pdf import render_pdf
from daemon.store import create_store
from tests.cli.conftest import Run, assert_one_line_error


def cbe(first_eight: int) -> str:
    return f"{first_eight:08d}{97 - first_eight % 97:02d}"


ALPHA, BETA, GAMMA = cbe(1234567), cbe(2345678), cbe(3456789)
PDF = render_pdf(["Montant à payer : 1.234,56 EUR"], title="Avis")
SHA = hashlib.sha256(PDF).hexdigest()
T0 = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)


@dataclass
class Seeded:
    enterprises: dict[str, int]
    messages: dict[str, int]
    documents: dict[str, int]


def _store_pdf(engine: Engine, tmp_path: Path) -> None:
    config = load_config()  # the commands' own configuration (environment of db_env)
    store = create_store(config, engine)
    source = store.staging() / "incoming"
    source.write_bytes(PDF)
    assert store.put(source, SHA) == f"sha256:{SHA}"


def _seed_rows(session: Session) -> Seeded:
    companies = {number: Enterprise(number=number, name=name, enabled=number != GAMMA)
                 for number, name in ((ALPHA, "Alpha NV"), (BETA, "Beta SRL"), (GAMMA, "Gamma GmbH"))}
    session.add_all(companies.values())
    session.flush()
    a, b = companies[ALPHA].id, companies[BETA].id
    rows = {
        "tax": Message(enterprise_id=a, provider_id="p", ebox_message_id="m1", subject="[URGENT] Avis de paiement",
                       sender="SPF_FINANCES", published_at=T0, read=False, fetch_state="fetched",
                       fetched_at=T0 + dt.timedelta(minutes=1)),
        "info": Message(enterprise_id=a, provider_id="p", ebox_message_id="m2", subject="Attestation",
                        sender="ONSS", published_at=T0 - dt.timedelta(days=1), read=True, fetch_state="fetched"),
        "paid": Message(enterprise_id=b, provider_id="p", ebox_message_id="m3", subject="Aanslagbiljet",
                        sender="VLABEL", published_at=T0 - dt.timedelta(days=2), read=False, visible=False,
                        fetch_state="fetched"),
        "broken": Message(enterprise_id=b, provider_id="p", ebox_message_id="m4", subject="Kaputt",
                          sender="X", published_at=T0 - dt.timedelta(days=3), fetch_state="failed",
                          fetch_error="download truncated"),
    }
    session.add_all(rows.values())
    session.flush()
    documents = {
        "stored": Document(message_id=rows["tax"].id, attachment_id="a1", file_name="avis.pdf",
                           media_type="application/pdf", language="fr", size=len(PDF), sha256=SHA,
                           storage_key=f"sha256:{SHA}", stored_at=T0),
        "pending": Document(message_id=rows["tax"].id, attachment_id="a2", file_name="annexe.pdf"),
        "lost": Document(message_id=rows["info"].id, attachment_id="a3", file_name="lost.pdf", size=3,
                         sha256="0" * 64, storage_key="sha256:" + "0" * 64, stored_at=T0),
    }
    session.add_all(documents.values())
    session.flush()
    session.add_all([
        PaymentRequest(enterprise_id=a, message_id=rows["tax"].id, document_id=documents["stored"].id,
                       amount=Decimal("1234.56"), iban="BE76734933575495", bic="KREDBEBB",
                       reference="+++123/4567/89002+++", reference_kind="ogm", due_date=dt.date(2026, 3, 31),
                       beneficiary_name="SPF Finances", status="open",
                       field_sources={"amount": {"source": "pdf", "confidence": 0.3},
                                      "iban": {"source": "ebox", "confidence": 0.99},
                                      "beneficiary": {"source": "pdf", "confidence": 0.5},
                                      "review_reasons": [{"field": "amount", "code": "ambiguous",
                                                          "message": "2 different amounts are labelled as to pay"}]}),
        PaymentRequest(enterprise_id=b, message_id=rows["paid"].id, amount=Decimal("99.00"), status="paid",
                       field_sources={"amount": {"source": "manual", "confidence": 1.0}}),
    ])
    return Seeded({number: company.id for number, company in companies.items()},
                  {name: message.id for name, message in rows.items()},
                  {name: document.id for name, document in documents.items()})


@pytest.fixture
def seeded(db_env: dict[str, str], engine: Engine, tmp_path: Path) -> Seeded:
    with Session(engine) as session, session.begin():
        ids = _seed_rows(session)
    _store_pdf(engine, tmp_path)
    return ids


def table_ids(stdout: str) -> list[int]:
    return [int(line.split("│")[1]) for line in stdout.splitlines() if line.startswith("│ ")
            and line.split("│")[1].strip().isdigit()]


# -- messages list -----------------------------------------------------------------------------


def test_list_newest_first_with_state_and_payment(run: Run, seeded: Seeded):
    result = run("messages", "list")
    assert result.exit_code == 0, result.stderr
    m = seeded.messages
    assert table_ids(result.stdout) == [m["tax"], m["info"], m["paid"], m["broken"]]
    tax = next(line for line in result.stdout.splitlines() if line.startswith(f"│ {m['tax']} "))
    for needle in (display(ALPHA), "2026-03-01 09:30", "SPF_FINANCES", "[URGENT] Avis de paiement", "unread",
                   "fetched", "1234.56 EUR", "2026-03-31", "open, review"):
        assert needle in tax
    paid = next(line for line in result.stdout.splitlines() if line.startswith(f"│ {m['paid']} "))
    assert "unread, hidden" in paid
    assert "99.00 EUR" in paid
    assert "paid" in paid
    assert "failed" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--unread"], ["tax", "paid", "broken"]),
        (["--to-pay"], ["tax"]),
        (["--enterprise", f"BE {display(BETA)}"], ["paid", "broken"]),
        (["-e", BETA[1:], "--unread"], ["paid", "broken"]),  # the old nine-digit notation
        (["-e", ALPHA, "-e", BETA, "--to-pay"], ["tax"]),
        (["-e", GAMMA], []),
    ],
)
def test_list_filters(run: Run, seeded: Seeded, args: list[str], expected: list[str]):
    result = run("messages", "list", *args)
    assert result.exit_code == 0, result.stderr
    assert table_ids(result.stdout) == [seeded.messages[name] for name in expected]
    if not expected:
        assert result.stdout == "no messages\n"


def test_list_limit_says_when_more_match(run: Run, seeded: Seeded):
    result = run("messages", "list", "--limit", "2")
    assert table_ids(result.stdout) == [seeded.messages["tax"], seeded.messages["info"]]
    assert "more match" in result.stderr
    everything = run("messages", "list", "--limit", "0")
    assert len(table_ids(everything.stdout)) == 4
    assert everything.stderr == ""
    exact = run("messages", "list", "--limit", "4")
    assert exact.stderr == ""


def test_list_unknown_enterprise(run: Run, seeded: Seeded):
    assert_one_line_error(run("messages", "list", "-e", cbe(7654321)), 1, "not registered")
    malformed = run("messages", "list", "-e", "0999.999.999")  # a usage error, before the database is read
    assert malformed.exit_code == 2
    assert "Invalid value for '--enterprise'" in malformed.stderr
    assert "check digits" in malformed.stderr


def test_list_empty_database(run: Run, db_env: dict[str, str]):
    result = run("messages", "list")
    assert result.exit_code == 0
    assert result.stdout == "no messages\n"


# -- messages show -----------------------------------------------------------------------------


def test_show_metadata_documents_and_payment(run: Run, seeded: Seeded):
    result = run("messages", "show", str(seeded.messages["tax"]))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    fields = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
              for line in out.splitlines() if line[:18].strip() and line[18:20] == ": "}
    assert fields["enterprise"] == f"{display(ALPHA)} (Alpha NV)"
    assert fields["subject"] == "[URGENT] Avis de paiement"
    assert fields["published"] == "2026-03-01 09:30:00 UTC"
    assert fields["state"] == "unread, visible"
    assert fields["fetch"] == "fetched at 2026-03-01 09:31:00 UTC"
    assert "2 document(s)" in out
    assert SHA in out
    assert (f"{len(PDF)} B" if len(PDF) < 1024 else f"{len(PDF) / 1024:.1f} KiB") in out
    assert "not stored" in out
    assert f"payment request {seeded.messages['tax']}: open, from document {seeded.documents['stored']}" in out
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:5]]
            for line in out.splitlines() if line.startswith("│ ") and not line.split("│")[1].strip().isdigit()}
    assert rows["amount"] == ["1234.56", "pdf", "0.30"]
    assert rows["iban"] == ["BE76734933575495", "ebox", "0.99"]
    assert rows["reference"] == ["+++123/4567/89002+++ (ogm)", "?", ""]  # no recorded source
    assert rows["beneficiary"] == ["SPF Finances", "pdf", "0.50"]
    assert rows["due_date"][0] == "2026-03-31"
    assert "review: 2 different amounts are labelled as to pay" in out


def test_show_failed_message_without_payment(run: Run, seeded: Seeded):
    result = run("messages", "show", str(seeded.messages["broken"]))
    assert result.exit_code == 0, result.stderr
    assert "fetch error: download truncated" in result.stdout
    assert "0 document(s)" in result.stdout
    assert "no payment request" in result.stdout


def test_show_unknown_message(run: Run, seeded: Seeded):
    assert_one_line_error(run("messages", "show", "987654"), 1, "no message with id 987654")
    assert run("messages", "show", "abc").exit_code == 2


# -- documents get -----------------------------------------------------------------------------


@pytest.fixture(params=["filesystem", "database"])
def store_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, db_env: dict[str, str]) -> str:
    monkeypatch.setenv("EBOXD_DOCUMENTS__STORE", request.param)
    return str(request.param)


def test_get_to_a_file(run: Run, store_kind: str, seeded: Seeded, tmp_path: Path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "copy.pdf"
    target.write_bytes(b"an older file")
    result = run("documents", "get", str(seeded.documents["stored"]), "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert target.read_bytes() == PDF
    assert target.stat().st_mode & 0o777 == 0o600  # confidential, as documented
    assert os.listdir(out_dir) == ["copy.pdf"]  # no temporary file left behind
    assert f"written to {target}" in result.stderr
    assert result.stdout == ""


def test_get_into_a_directory_uses_the_file_name(run: Run, store_kind: str, seeded: Seeded, tmp_path: Path):
    result = run("documents", "get", str(seeded.documents["stored"]), "--output", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "avis.pdf").read_bytes() == PDF


def test_get_to_standard_output(run: Run, store_kind: str, seeded: Seeded):
    result = run("documents", "get", str(seeded.documents["stored"]), "-o", "-")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == PDF


@pytest.mark.parametrize(
    ("name", "needles"),
    [
        ("unknown", ["no document with id 987654"]),
        ("pending", ["is not stored", "annexe.pdf"]),
        ("lost", ["is missing from", "sha256:000000"]),
    ],
)
def test_get_errors_leave_the_target_alone(run: Run, store_kind: str, seeded: Seeded, tmp_path: Path, name: str,
                                           needles: list[str]):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "keep.pdf"
    target.write_bytes(b"precious")
    document_id = seeded.documents.get(name, 987654)
    assert_one_line_error(run("documents", "get", str(document_id), "-o", str(target)), 1, *needles)
    assert target.read_bytes() == b"precious"
    assert os.listdir(out_dir) == ["keep.pdf"]


def test_get_refuses_content_that_does_not_match_its_hash(run: Run, engine: Engine, seeded: Seeded,
                                                         db_env: dict[str, str], tmp_path: Path):
    stored = Path(db_env["EBOXD_DAEMON__DATA_DIR"]) / "documents" / SHA[:2] / SHA[2:4] / SHA
    stored.write_bytes(PDF[:-10] + b"tampered!!")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert_one_line_error(run("documents", "get", str(seeded.documents["stored"]), "-o", str(out_dir / "copy.pdf")),
                          1, "differs from the recorded")
    assert os.listdir(out_dir) == []


def test_get_into_a_missing_directory(run: Run, seeded: Seeded, tmp_path: Path):
    result = run("documents", "get", str(seeded.documents["stored"]), "-o", str(tmp_path / "nope" / "x.pdf"))
    assert_one_line_error(result, 1, "cannot write to")


def test_get_needs_an_output(run: Run, seeded: Seeded):
    result = run("documents", "get", str(seeded.documents["stored"]))
    assert result.exit_code == 2
    assert "-o" in result.stderr


# -- poll --------------------------------------------------------------------------------------


def _due(engine: Engine) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(select(PollState.enterprise_id).where(PollState.next_poll_at <= utcnow())).scalars())


def _postpone_all(engine: Engine) -> None:
    request_poll(engine)  # creates the schedule rows
    with engine.begin() as tx:
        tx.execute(update(PollState).values(next_poll_at=utcnow() + dt.timedelta(hours=1)))


def test_poll_numbers_in_any_notation(run: Run, engine: Engine, seeded: Seeded):
    _postpone_all(engine)
    result = run("poll", f"BE{ALPHA}", display(ALPHA), BETA[1:])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("2 of 2 enterprise(s) due for polling now")
    assert _due(engine) == {seeded.enterprises[ALPHA], seeded.enterprises[BETA]}


def test_poll_all_enabled(run: Run, engine: Engine, seeded: Seeded):
    _postpone_all(engine)
    result = run("poll", "--all")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("2 enterprise(s) due for polling now")
    assert _due(engine) == {seeded.enterprises[ALPHA], seeded.enterprises[BETA]}  # not the disabled one


def test_poll_leaves_a_running_poll_alone(run: Run, engine: Engine, seeded: Seeded):
    _postpone_all(engine)
    with engine.begin() as tx:
        tx.execute(update(PollState).where(PollState.enterprise_id == seeded.enterprises[BETA])
                   .values(lease_token="run", leased_until=utcnow() + dt.timedelta(minutes=5)))
    result = run("poll", ALPHA, BETA)
    assert result.stdout.startswith("1 of 2 enterprise(s) due for polling now; 1 already being polled")


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        ([GAMMA], 1, "disabled"),
        ([cbe(7654321)], 1, "not registered"),
        (["12345"], 2, "expected 10 digits"),
    ],
)
def test_poll_errors(run: Run, engine: Engine, seeded: Seeded, args: list[str], code: int, needle: str):
    _postpone_all(engine)
    result = run("poll", ALPHA, *args)
    if code == 2:  # a malformed number is a usage error naming the argument
        assert result.exit_code == 2
        assert "Invalid value for '[NUMBER]...'" in result.stderr
        assert needle in result.stderr
    else:
        assert_one_line_error(result, code, needle)
    assert _due(engine) == set()  # nothing made due when one number is wrong


@pytest.mark.parametrize("args", [[], ["--all", ALPHA]])
def test_poll_needs_numbers_or_all(run: Run, db_env: dict[str, str], args: list[str]):
    result = run("poll", *args)
    assert result.exit_code == 2
    assert "give enterprise numbers or --all" in result.stderr
