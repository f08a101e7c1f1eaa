"""Purchase entries for documents with an amount: the supplier found by VAT/CBE number (as typed in
Exact), our Document attached, never twice after an unknown outcome, never a supplier invented."""

from __future__ import annotations

import pytest
from eboxd_exact.sandbox import ExactSandboxServer

from daemon.exports import ExportOutcome, run_export
from daemon.plugins import PluginManager
from tests.exporters.exact.conftest import ExactSeeded, FakeClock, connect, documents_in

GL_ACCOUNT = "6f2c1d0a-1111-4a2b-9c3d-000000000604"
FOD_VAT = "0308.357.159"  # typed in Exact as BE0308357159


def _run(seeded: ExactSeeded, manager: PluginManager, document_id: int, target: str) -> ExportOutcome:
    return run_export(seeded.engine, seeded.store, seeded.secrets, manager, document_id, "exact", target,
                      last_attempt=False)


def _fod(exact: ExactSandboxServer) -> str:
    return next(str(a["ID"]) for a in exact.state.accounts[124132] if a["Name"] == "FOD Financiën")


def test_a_document_with_an_amount_gets_a_purchase_entry_on_the_supplier_found_by_vat(
        seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock) -> None:
    target = connect(seeded, manager, exact, clock, journal="60", gl_account=GL_ACCOUNT,
                     suppliers=f"FOD Financiën={FOD_VAT}").target
    with_amount, letter = seeded.document_ids[:2]
    outcome = _run(seeded, manager, with_amount, target)
    assert outcome.status == "completed"
    assert outcome.receipt is not None
    [entry] = exact.state.purchase_entries
    assert outcome.receipt["purchase_entry"] == entry["EntryID"]
    assert entry["Supplier"] == _fod(exact) == outcome.receipt["supplier"]
    assert entry["Document"] == outcome.receipt["document"]  # ours, not an empty one Exact would make
    assert (entry["Journal"], entry["AmountDC"], entry["YourRef"]) == ("60", 123.45, "+++090/9337/55493+++")
    assert entry["PurchaseEntryLines"][0]["GLAccount"] == GL_ACCOUNT
    assert len(documents_in(exact)) == 1

    assert _run(seeded, manager, letter, target).status == "completed"
    assert len(exact.state.purchase_entries) == 1  # a letter without an amount: no entry


def test_purchase_entry_answer_lost_then_retried_is_not_booked_twice(
        seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock) -> None:
    target = connect(seeded, manager, exact, clock, journal="60", gl_account=GL_ACCOUNT,
                     suppliers=f"FOD Financiën={FOD_VAT}").target
    doc = seeded.document_ids[0]
    exact.state.fail_next("reset_after_store", entity="PurchaseEntries", method="POST")
    with pytest.raises(Exception, match="no answer"):
        _run(seeded, manager, doc, target)
    outcome = _run(seeded, manager, doc, target)
    assert outcome.status == "completed"
    assert outcome.receipt is not None
    assert outcome.receipt["reconciled"] is True
    [entry] = exact.state.purchase_entries
    assert outcome.receipt["purchase_entry"] == entry["EntryID"]
    assert len(documents_in(exact)) == 1


@pytest.mark.parametrize("suppliers", ["FOD Financiën=0999999999", "RSZ=0206731645"])
def test_no_known_supplier_means_no_entry_and_no_new_supplier(
        seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock,
        suppliers: str) -> None:
    target = connect(seeded, manager, exact, clock, journal="60", gl_account=GL_ACCOUNT, suppliers=suppliers).target
    accounts = len(exact.state.accounts[124132])
    outcome = _run(seeded, manager, seeded.document_ids[0], target)
    assert outcome.status == "completed"  # the document is in Exact; the booking is left to the accountant
    assert outcome.receipt is not None
    assert outcome.receipt["purchase_entry"] is None
    assert "supplier" in outcome.receipt["purchase_entry_skipped"]
    assert exact.state.purchase_entries == []
    assert len(exact.state.accounts[124132]) == accounts
