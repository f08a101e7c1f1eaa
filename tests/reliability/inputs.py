"""Helpers of the bad-input catalogue: an e-Box sandbox with a stored mailbox, what is stored (to
prove nothing was lost), bad files, and the peak memory of a step."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from pypdf import PdfReader, PdfWriter
from sqlalchemy import Engine

from daemon.config import Config
from daemon.db.models import BankTransaction, Document, Message, PaymentRequest
from daemon.poll import EboxAccess, request_poll
from daemon.sandbox.ebox import EboxSandbox, serve_sandbox
from daemon.sandbox.pdf import render_pdf
from daemon.secrets import SecretBox
from daemon.store import DocumentStore, create_store
from tests.pipeline.conftest import Pipeline, onboard_all, pipeline_config
from tests.pipeline.helpers import fetch_all, poll_due


@dataclass
class Mailbox:
    """One enterprise onboarded, its e-Box polled and fetched once: the data that must survive."""

    sandbox: EboxSandbox
    pipeline: Pipeline

    @property
    def engine(self) -> Engine:
        return self.pipeline.engine

    @property
    def config(self) -> Config:
        return self.pipeline.config

    @property
    def store(self) -> DocumentStore:
        return self.pipeline.store

    @property
    def number(self) -> str:
        return self.pipeline.numbers[0]

    def poll(self) -> list[str | None]:
        """Poll every enterprise now; the errors of the polls (None for a poll that succeeded)."""
        request_poll(self.engine)
        return [outcome.error for outcome in poll_due(self.pipeline)]

    def message_row(self, ebox_id: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.scalar(sa.select(Message.id).where(Message.ebox_message_id == ebox_id))


@contextmanager
def stored_mailbox(engine: Engine, database_url: str, directory: Path, **env: str) -> Iterator[Mailbox]:
    sandbox = serve_sandbox("127.0.0.1", 0, seed=7, enterprises=1)
    try:
        config = pipeline_config(database_url, sandbox.url, directory, **env)
        secrets = SecretBox.from_config(config)
        numbers = onboard_all(engine, config, sandbox, secrets)
        access = EboxAccess(config, secrets)
        try:
            mailbox = Mailbox(sandbox, Pipeline(config, engine, secrets, access, create_store(config, engine),
                                                numbers))
            assert mailbox.poll() == [None]
            fetch_all(mailbox.pipeline)
            yield mailbox
        finally:
            access.close()
    finally:
        sandbox.shutdown()


@dataclass(frozen=True)
class Stored:
    """Row counts and the content hash of every stored document."""

    messages: int
    fetched: int
    payment_requests: int
    bank_transactions: int
    documents: dict[str, str]  # storage key → SHA-256 of the bytes read back


def stored(engine: Engine, store: DocumentStore | None = None) -> Stored:
    with engine.connect() as conn:
        def count(query: sa.Select[tuple[int]]) -> int:
            return int(conn.scalar(query) or 0)

        messages = count(sa.select(sa.func.count()).select_from(Message))
        fetched = count(sa.select(sa.func.count()).where(Message.fetch_state == "fetched"))
        requests = count(sa.select(sa.func.count()).select_from(PaymentRequest))
        transactions = count(sa.select(sa.func.count()).select_from(BankTransaction))
        keys = conn.execute(sa.select(Document.storage_key)).scalars().all()
    documents = {}
    for key in keys if store is not None else ():
        assert store is not None
        with store.open(key) as file:
            documents[key] = hashlib.sha256(file.read()).hexdigest()
    return Stored(messages, fetched, requests, transactions, documents)


def encrypted_pdf(password: str = "secret") -> bytes:
    """A letter's PDF encrypted with a user password (unreadable without it)."""
    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(render_pdf(["Montant à payer : 123,45 EUR"]))).pages:
        writer.add_page(page)
    writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


NOT_A_PDF = b"<html><body>Session expired, please log in again</body></html>\n"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


@contextmanager
def peak_rss_growth() -> Iterator[list[int]]:
    """Samples this process's resident memory every 20 ms while the block runs; the list it yields
    holds, afterwards, the peak growth over the start in bytes."""
    result = [0]
    start = _rss_bytes()
    peak = start
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield result
    finally:
        done.set()
        sampler.join()
        result[0] = max(peak, _rss_bytes()) - start
