"""A CODA import and a Ponto sync storing the very same movement at the same instant store it once:
the second writer of an account waits for the first one's transaction, then finds its row."""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from daemon.db.models import BankTransaction
from daemon.payments.bank_import import store_movement

ACCOUNT = "BE68539007547034"


def _row(source: str, key: str) -> dict[str, Any]:
    return {"source": source, "dedupe_key": f"{source}:{key}", "account_iban": ACCOUNT,
            "booking_date": dt.date(2026, 11, 20), "amount": Decimal("-75.00"), "currency": "EUR",
            "counterparty_iban": "BE71096123456769", "structured_reference": "010806817183", "raw": {}}


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_the_same_movement_from_coda_and_ponto_at_once_is_stored_once(engine: Engine) -> None:
    outcome: dict[str, str] = {}
    with engine.connect() as coda:
        coda.begin()
        outcome["coda"] = store_movement(coda, _row("coda", "one"))

        def ponto_sync() -> None:
            with engine.begin() as ponto:
                outcome["ponto"] = store_movement(ponto, _row("ponto", "tx-1"))

        racer = threading.Thread(target=ponto_sync)
        racer.start()
        time.sleep(1.0)  # long enough for the second writer to get past its own checks if unserialised
        assert racer.is_alive(), f"the second writer did not wait for the first: {outcome}"
        coda.commit()
    racer.join(30)
    assert outcome == {"coda": "inserted", "ponto": "linked"}
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(BankTransaction)) == 1
        assert conn.scalar(select(BankTransaction.raw)) == {"linked_key": "ponto:tx-1"}
