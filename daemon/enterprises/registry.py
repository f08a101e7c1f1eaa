"""The enterprises eboxd manages: add, find, list, enable/disable, remove."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon import ebox
from daemon.db.models import Credential, Enterprise
from daemon.errors import EboxdError

__all__ = ["EnterpriseError", "add_enterprise", "credential_of", "find_enterprise", "list_enterprises",
           "parse_number", "remove_enterprise"]


class EnterpriseError(EboxdError):
    """An enterprise command cannot be carried out; the message says why and what to do."""


def parse_number(text: str) -> str:
    """The canonical 10-digit CBE number, or an error that says what is wrong with ``text``."""
    try:
        return ebox.parse_enterprise_number(text).canonical
    except ebox.InvalidEnterpriseNumber as exc:
        raise EnterpriseError(str(exc)) from None


def add_enterprise(session: Session, number_text: str, name: str) -> Enterprise:
    number = parse_number(number_text)
    if not name.strip():
        raise EnterpriseError("the enterprise needs a name (--name)")
    existing = session.scalar(select(Enterprise).where(Enterprise.number == number))
    if existing is not None:
        raise EnterpriseError(f"enterprise {display(number)} is already registered as {existing.name!r}")
    enterprise = Enterprise(number=number, name=name.strip(), enabled=True)
    session.add(enterprise)
    session.flush()
    return enterprise


def find_enterprise(session: Session, number_text: str) -> Enterprise:
    number = parse_number(number_text)
    enterprise = session.scalar(select(Enterprise).where(Enterprise.number == number))
    if enterprise is None:
        raise EnterpriseError(f"enterprise {display(number)} is not registered: `eboxd enterprise add` it first")
    return enterprise


def list_enterprises(session: Session) -> list[tuple[Enterprise, Credential | None]]:
    rows = session.execute(
        select(Enterprise, Credential)
        .outerjoin(Credential, (Credential.enterprise_id == Enterprise.id) & (Credential.kind == "ebox"))
        .order_by(Enterprise.number)
    ).all()
    return [(enterprise, credential) for enterprise, credential in rows]


def credential_of(session: Session, enterprise: Enterprise) -> Credential | None:
    return session.scalar(select(Credential).where(Credential.enterprise_id == enterprise.id,
                                                   Credential.kind == "ebox"))


def remove_enterprise(session: Session, enterprise: Enterprise) -> None:
    """Delete the enterprise with its credential, messages and documents rows (cascade)."""
    users = session.scalars(select(Enterprise.number).where(Enterprise.access_via_id == enterprise.id)).all()
    if users:
        raise EnterpriseError(f"enterprise {display(enterprise.number)} gives access to "
                              f"{', '.join(display(n) for n in users)}: reconnect those first")
    session.delete(enterprise)


def display(number: str) -> str:
    return f"{number[:4]}.{number[4:7]}.{number[7:]}"
