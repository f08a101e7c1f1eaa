"""``eboxd bank``: CODA statement files: read them (``inspect``) and import their movements
(``import-coda``), which also matches them against open payment requests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from daemon.banking.coda import Movement, Statement, iter_statements
from daemon.cli._params import ENTERPRISE_NUMBER
from daemon.cli._state import State, pass_state
from daemon.cli.payment import console
from daemon.cli.ponto import ponto
from daemon.payments.bank_import import import_coda_file
from daemon.payments.matching import match_payments

__all__ = ["COMMANDS"]


@click.group()
def bank() -> None:
    """Bank statements (CODA): inspect them, import their movements and match payments."""


def _movement_json(m: Movement) -> dict[str, Any]:
    c, p = m.communication, m.counterparty
    return {
        "sequence": m.sequence, "detail": m.detail, "type": m.type, "transaction_code": m.transaction_code.code,
        "amount": str(m.amount), "value_date": m.value_date.isoformat() if m.value_date else None,
        "entry_date": m.entry_date.isoformat() if m.entry_date else None, "bank_reference": m.bank_reference,
        "communication": {"structured": c.structured, "type": c.type, "text": c.text, "ogm": c.ogm, "rf": c.rf},
        "counterparty": {"name": p.name, "iban": p.iban, "account": p.account, "bic": p.bic},
        "end_to_end_id": m.end_to_end_id, "globalisation": m.globalisation,
        "information": [{"type": i.communication.type, "text": i.communication.text} for i in m.information],
        "details": [_movement_json(d) for d in m.details],
    }


def _statement_json(s: Statement) -> dict[str, Any]:
    return {
        "account": {"iban": s.account.iban, "number": s.account.number, "structure": s.account.structure,
                    "currency": s.account.currency},
        "holder": s.holder_name, "paper_number": s.paper_number, "coda_sequence": s.coda_sequence,
        "duplicate": s.header.duplicate,
        "old_balance": str(s.old_balance), "old_balance_date": s.old_balance_date.isoformat() if s.old_balance_date
        else None, "new_balance": str(s.new_balance),
        "new_balance_date": s.new_balance_date.isoformat() if s.new_balance_date else None,
        "movements": [_movement_json(m) for m in s.movements], "free_messages": s.free_messages,
        "warnings": [{"code": w.code, "message": w.message, "line": w.line} for w in s.warnings],
    }


def _rows(movement: Movement, depth: int = 0) -> Iterator[tuple[str, ...]]:
    c, p = movement.communication, movement.counterparty
    comm = (c.rf or (f"+++{c.ogm[:3]}/{c.ogm[3:7]}/{c.ogm[7:]}+++" if c.ogm else "") or c.text)[:60]
    yield (f"{'  ' * depth}{movement.sequence:04d}/{movement.detail:04d}", movement.type,
           str(movement.entry_date or ""), f"{movement.amount:.2f}", " ".join(filter(None, (p.name, p.iban))),
           (f"[{c.type}] " if c.structured else "") + comm)
    for detail in movement.details:
        yield from _rows(detail, depth + 1)


@bank.command("inspect", short_help="Show a CODA file's statements, movements and warnings.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per statement in a list).")
def inspect(file: Path, as_json: bool) -> None:
    """Read FILE (CODA 2.x) without storing anything: balances, movements with their decoded
    communications and counterparties, and what fails the trailer checks. Exit 1 if malformed."""
    if as_json:
        click.echo(json.dumps([_statement_json(s) for s in iter_statements(file)], indent=2, ensure_ascii=False))
        return
    out = console()
    for number, s in enumerate(iter_statements(file), start=1):
        out.print(Text(f"statement {number}: {s.account.iban or s.account.number} {s.account.currency}, "
                       f"{s.old_balance:.2f} ({s.old_balance_date}) → {s.new_balance:.2f} ({s.new_balance_date})",
                       style="bold"))
        table = Table("seq/detail", "type", "booked", "amount", "counterparty", "communication")
        for movement in s.movements:
            for row in _rows(movement):
                table.add_row(*(Text(cell) for cell in row))
        out.print(table)
        for warning in s.warnings:
            out.print(Text(f"warning: {warning.message} [{warning.code}]", style="yellow"), soft_wrap=True)


@bank.command("import-coda", short_help="Import CODA files' movements (each once) and match payments.")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-e", "--enterprise", "enterprise_number", type=ENTERPRISE_NUMBER,
              help="Enterprise number the account belongs to "
              "(default: the holder number in the file's header).")
@click.option("--no-match", is_flag=True, help="Only store the movements; the match_payments worker matches them.")
@pass_state
def import_coda(state: State, files: tuple[Path, ...], enterprise_number: str | None, no_match: bool) -> None:
    """Store the movements of each CODA FILE once (importing a file again changes nothing), then
    match them against open payment requests: an exact OGM/RF pays a request; amount and IBAN
    without reference only suggest one for review. A malformed file stores nothing (exit 1)."""
    engine = state.engine()
    for file in files:
        result = import_coda_file(engine, file, enterprise_number=enterprise_number, queue_matching=no_match)
        click.echo(f"{file}: {result.statements} statement(s), {result.movements} movement(s), "
                   f"{result.inserted} new")
        for warning in result.warnings:
            click.echo(f"  warning: {warning}")
    if not no_match:
        matched = match_payments(engine, window_days=state.config.banking.match_window_days,
                                 confidence_threshold=state.config.banking.match_confidence_threshold)
        click.echo(f"matching: {matched.examined} examined, {matched.matched} paid, {matched.partial} partial, "
                   f"{matched.suggested} to review, {matched.unmatched} unmatched")


bank.add_command(ponto)

COMMANDS = [bank]
