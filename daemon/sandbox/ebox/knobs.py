"""Operations on a running sandbox, shared by the admin HTTP API, the CLI and tests."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from daemon.sandbox.belgian import cbe_is_valid
from daemon.sandbox.ebox.faults import FAULT_KINDS
from daemon.sandbox.ebox.letters import KINDS
from daemon.sandbox.ebox.seed import Enterprise, SeedLetter, make_letter
from daemon.sandbox.ebox.state import FaultRule, SandboxState

__all__ = [
    "KnobError",
    "add_fault",
    "advance_clock",
    "clear_faults",
    "expire_tokens",
    "letter_summary",
    "parse_fault_spec",
    "publish",
    "replace_content",
    "set_maintenance",
]


class KnobError(ValueError):
    """A knob was given an unusable value."""


def publish(state: SandboxState, enterprise_number: str, *, kind: str | None = None,
            language: str | None = None) -> SeedLetter:
    """Publish a new letter now into ``enterprise_number``'s e-Box (a random kind unless given)."""
    if not cbe_is_valid(enterprise_number):
        raise KnobError(f"not a valid enterprise number: {enterprise_number!r}")
    if kind is not None and kind not in KINDS:
        raise KnobError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    if language is not None and language not in ("fr", "nl", "de"):
        raise KnobError(f"unknown language {language!r}")
    with state.lock:
        enterprise = next((e for e in state.catalogue.enterprises if e.number == enterprise_number), None)
        if enterprise is None:
            enterprise = Enterprise(enterprise_number, f"Entreprise {enterprise_number}",
                                    "Rue de la Loi 16, 1000 Bruxelles", language or "fr")
        rng: random.Random = state.publish_rng
        chosen = kind or rng.choice(KINDS)
        letter = make_letter(rng, enterprise, chosen, state.now().replace(microsecond=0), language=language,
                             pdf_size=state.pdf_size)
        state.add_letter(letter)
        state.published.append(letter)
    return letter


def replace_content(state: SandboxState, message_id: str, content: bytes) -> None:
    """Give a letter's main content (its PDF) other bytes, as the e-Box would serve them: size and
    digest follow. For bad input: a "PDF" that is not one, an encrypted one."""
    with state.lock:
        for box in state.mailboxes.values():
            record = box.get(message_id)
            if record is None:
                continue
            attachments = tuple(dataclasses.replace(a, content=content) if a.main_content else a
                                for a in record.letter.attachments)
            record.letter = dataclasses.replace(record.letter, attachments=attachments)
            return
    raise KnobError(f"no message {message_id!r} in any e-Box")


def add_fault(state: SandboxState, kind: str, *, rate: float = 1.0, status: int | None = None,
              retry_after: int | None = None, delay: float = 0.0, path: str = "",
              count: int | None = None, field: str = "", size: int = 0) -> FaultRule:
    """Install a fault rule; see :mod:`daemon.sandbox.ebox.faults` for the kinds."""
    if kind not in FAULT_KINDS:
        raise KnobError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
    if not 0.0 <= rate <= 1.0:
        raise KnobError("rate must be between 0 and 1")
    if kind == "missing_field" and not field:
        raise KnobError("a missing_field fault needs the field to remove, e.g. receiptDate")
    if kind == "huge_attachment" and size < 1:
        raise KnobError("a huge_attachment fault needs its size in bytes")
    if kind == "throttle":
        status, retry_after = 429, 1 if retry_after is None else retry_after
    elif kind == "error":
        status = status or 503
        if not 500 <= status <= 599:
            raise KnobError("error faults need a 5xx status")
    return state.add_fault(kind, rate=rate, status=status or 503, retry_after=retry_after, delay=delay,
                           path=path, count=count, field=field, size=size)


def clear_faults(state: SandboxState) -> None:
    """Remove every fault rule."""
    with state.lock:
        state.faults.clear()


def parse_fault_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Parse ``KIND[:RATE[:X]]`` (X = status for ``error``, delay for ``slow``, Retry-After for
    ``throttle``, the field for ``missing_field``, bytes for ``huge_attachment``), e.g. ``error:0.1:502``,
    ``throttle:1:5``, ``slow:1:2.5``, ``truncate:0.3``, ``missing_field:0.1:receiptDate``."""
    kind, *rest = spec.split(":")
    options: dict[str, Any] = {}
    try:
        if rest:
            options["rate"] = float(rest[0])
        if len(rest) > 1:
            key = {"slow": "delay", "throttle": "retry_after", "missing_field": "field",
                   "huge_attachment": "size"}.get(kind, "status")
            options[key] = float(rest[1]) if key == "delay" else rest[1] if key == "field" else int(rest[1])
    except ValueError:
        raise KnobError(f"bad fault spec {spec!r}: expected KIND[:RATE[:STATUS|DELAY|RETRY_AFTER]]") from None
    if kind not in FAULT_KINDS or len(rest) > 2:
        raise KnobError(f"bad fault spec {spec!r}: kind one of {', '.join(FAULT_KINDS)}")
    return kind, options


def set_maintenance(state: SandboxState, provider_id: str, enabled: bool = True, *,
                    duration: int = 3600) -> None:
    """Put a provider in (or out of) maintenance: its registry answers 503 with ``Retry-After``."""
    if provider_id not in state.providers:
        raise KnobError(f"unknown provider {provider_id!r}")
    with state.lock:
        if enabled:
            now = state.now().replace(microsecond=0)
            state.maintenance[provider_id] = (now - timedelta(minutes=5), now + timedelta(seconds=duration))
        else:
            state.maintenance.pop(provider_id, None)


def expire_tokens(state: SandboxState, client_ids: Iterable[str] | None = None) -> int:
    """Make issued access tokens expire now; returns how many."""
    wanted = None if client_ids is None else set(client_ids)
    count = 0
    with state.lock:
        past = state.now() - timedelta(seconds=1)
        for token in state.tokens.values():
            if wanted is None or token.client_id in wanted:
                token.expires_at = min(token.expires_at, past)
                count += 1
    return count


def advance_clock(state: SandboxState, seconds: float) -> None:
    """Move the sandbox clock forward (token and message expiry follow it)."""
    with state.lock:
        state.clock_offset += timedelta(seconds=seconds)


def letter_summary(letter: SeedLetter) -> dict[str, Any]:
    """JSON description of a letter with its expected payment fields (for tests and pipelines)."""
    return {
        "messageId": letter.message_id,
        "providerId": letter.provider_id,
        "enterpriseNumber": letter.enterprise_number,
        "language": letter.language,
        "kind": letter.kind,
        "subject": dict(letter.subject),
        "registeredMail": letter.registered_mail,
        "hasPaymentData": letter.payment_data,
        "payment": None if letter.payment is None else letter.payment.as_dict(),
        "attachments": [a.file_name for a in letter.attachments],
    }
