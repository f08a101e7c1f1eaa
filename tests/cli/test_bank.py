"""``eboxd bank inspect`` and ``eboxd bank import-coda``."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from daemon.banking.coda_writer import MovementSpec, StatementSpec, coda_bytes
from daemon.db.models import BankTransaction, Enterprise, Message, PaymentRequest
from tests.cli.conftest import Run, assert_one_line_error

SAMPLE = Path(__file__).resolve().parents[1] / "banking" / "fixtures" / "coda" / "febelfin-coda_CODA.txt"
OGM = "010806817183"


def test_inspect_table(run: Run):
    result = run("bank", "inspect", str(SAMPLE))
    assert result.exit_code == 0, result.stderr
    assert "statement 1: BE47435000000080 EUR" in result.stdout
    assert "+++269/0211/57996+++" in result.stdout
    assert "LA CROIX D OR SPRL" in result.stdout


def test_inspect_json(run: Run):
    [statement] = json.loads(run("bank", "inspect", str(SAMPLE), "--json").stdout)
    assert statement["new_balance"] == "9405296.990"
    assert len(statement["movements"]) == 59
    assert statement["warnings"] == []


def test_inspect_malformed_is_one_line(run: Run, tmp_path: Path):
    bad = tmp_path / "bad.cod"
    bad.write_bytes(SAMPLE.read_bytes().replace(b"1000000002578250", b"100000000257825X", 1))
    assert_one_line_error(run("bank", "inspect", str(bad)), 1, f"{bad}:3: columns 33-47: expected the amount")


def test_import_twice_and_match(run: Run, db_env: dict[str, str], engine: Engine, tmp_path: Path):
    with Session(engine) as session, session.begin():
        company = Enterprise(number="0403170701", name="Alpha")
        session.add(company)
        session.flush()
        message = Message(enterprise_id=company.id, provider_id="p", ebox_message_id="m", fetch_state="fetched")
        session.add(message)
        session.flush()
        session.add(PaymentRequest(enterprise_id=company.id, message_id=message.id, amount=Decimal("12.50"),
                                   reference=OGM, reference_kind="ogm", status="open", field_sources={}))
    file = tmp_path / "bank.cod"
    file.write_bytes(coda_bytes([StatementSpec(movements=[MovementSpec.ogm(Decimal("-12.50"), OGM)])]))
    first = run("bank", "import-coda", str(file), "-e", "0403170701")
    assert first.exit_code == 0, first.stderr
    assert "1 movement(s), 1 new" in first.stdout
    assert "1 paid" in first.stdout
    second = run("bank", "import-coda", str(file))
    assert "1 movement(s), 0 new" in second.stdout
    assert "0 examined" in second.stdout
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(BankTransaction)) == 1
        assert session.scalar(select(PaymentRequest.status)) == "paid"
    assert_one_line_error(run("bank", "import-coda", str(file), "-e", "0202239951"), 1, "no enterprise 0202239951")
