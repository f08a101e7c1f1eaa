"""``eboxd doctor``: is this node set up to work? One small function per check, in :data:`CHECKS`.

A check takes the shared :class:`Context` and yields :class:`Result` rows. It records what later
checks need on the context (the configuration, a database engine at the current schema, the
master key), and a check whose prerequisite failed yields a ``skip`` row saying so. A check that
raises becomes a ``fail`` row; the others still run. New parts of eboxd add their check to
:data:`CHECKS` (the exporters will).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from daemon import ebox
from daemon.config import Config, load_config
from daemon.db import create_db_engine, current_revision, head_revision
from daemon.db.models import Credential, Enterprise, utcnow
from daemon.enterprises import display, ebox_environment, explain, load_credential
from daemon.errors import EboxdError
from daemon.logging import redact_secrets
from daemon.secrets import SecretBox, master_key_path
from daemon.workers.broker import amqp_url
from daemon.workers.tasks import QUEUES

__all__ = ["CERTIFICATE_WARN_DAYS", "CHECKS", "Check", "Context", "Result", "Status", "days_left", "run_checks"]

# Certificates closer than this to their end are a warning (the alert rule uses the same bound).
CERTIFICATE_WARN_DAYS = 30
# Less free space than this under the data directory is a warning.
FREE_SPACE_WARN_BYTES = 1 << 30
TOKEN_CHECK_THREADS = 8


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Result:
    check: str
    target: str
    status: Status
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "target": self.target, "status": str(self.status), "detail": self.detail}


@dataclass
class Context:
    config_path: str | None = None
    enterprises: tuple[str, ...] = ()  # canonical numbers; empty: all of them
    request_tokens: bool = True
    config: Config | None = None
    engine: Engine | None = None  # set by the database check once it is reachable and current
    secrets: SecretBox | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # for checks added later

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


Check = Callable[[Context], Iterator[Result]]


def _safe(url: str) -> str:
    return str(redact_secrets(None, "", {"url": url})["url"])


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0]


def check_config(ctx: Context) -> Iterator[Result]:
    try:
        ctx.config = load_config(ctx.config_path)
    except EboxdError as exc:
        yield Result("config", ctx.config_path or "-", Status.FAIL, str(exc))
        return
    yield Result("config", ctx.config.source, Status.OK,
                 f"valid; e-Box environment {ctx.config.ebox.environment}, data directory {ctx.config.data_dir}")


def check_database(ctx: Context) -> Iterator[Result]:
    if ctx.config is None:
        yield Result("database", "-", Status.SKIP, "needs a valid configuration")
        return
    config = ctx.config
    target = _safe(config.database_url)
    engine = create_db_engine(config.database_url, busy_timeout_seconds=config.database.busy_timeout_seconds,
                              pool_size=1)
    try:
        revision = current_revision(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        yield Result("database", target, Status.FAIL, f"unreachable: {_first_line(exc)}")
        return
    if revision != head_revision():
        engine.dispose()
        yield Result("database", target, Status.FAIL,
                     f"schema at {revision or 'nothing'}, this eboxd needs {head_revision()}: run `eboxd db upgrade`")
        return
    ctx.engine = engine
    yield Result("database", target, Status.OK, f"{engine.dialect.name}, migrations at head ({revision})")


def check_broker(ctx: Context) -> Iterator[Result]:
    if ctx.config is None:
        yield Result("broker", "-", Status.SKIP, "needs a valid configuration")
        return
    import pika  # noqa: PLC0415 - the rest of the doctor does without it
    from pika.exceptions import AMQPError, ChannelClosedByBroker  # noqa: PLC0415

    config = ctx.config
    target = _safe(config.broker.url)
    parameters = pika.URLParameters(amqp_url(config))
    parameters.connection_attempts = 1
    parameters.socket_timeout = config.broker.connect_timeout_seconds
    parameters.stack_timeout = config.broker.connect_timeout_seconds * 2
    try:
        connection = pika.BlockingConnection(parameters)
    except (AMQPError, OSError) as exc:
        yield Result("broker", target, Status.FAIL, f"unreachable: {str(exc) or repr(exc)}")
        return
    try:
        yield Result("broker", target, Status.OK, "connected")
        for queue in QUEUES:
            channel = connection.channel()
            try:
                work = channel.queue_declare(queue, passive=True).method
                dead = channel.queue_declare(f"{queue}.XQ", passive=True).method.message_count
            except ChannelClosedByBroker:
                yield Result("queue", queue, Status.WARN, "not declared yet: no worker for it has started")
                continue
            channel.close()
            detail = f"{work.message_count} ready, {work.consumer_count} consumers, {dead} dead-lettered"
            if work.consumer_count == 0:
                yield Result("queue", queue, Status.WARN, f"{detail}: is eboxd-worker@{queue} running?")
            elif dead:
                yield Result("queue", queue, Status.WARN, f"{detail} (in {queue}.XQ)")
            else:
                yield Result("queue", queue, Status.OK, detail)
    finally:
        connection.close()


def check_document_store(ctx: Context) -> Iterator[Result]:
    if ctx.config is None:
        yield Result("document store", "-", Status.SKIP, "needs a valid configuration")
        return
    config = ctx.config
    kind = config.documents.store
    # The filesystem store keeps documents there; the database store stages downloads there.
    directory = config.documents_dir if kind == "filesystem" else config.data_dir / "staging"
    if not directory.exists() and not config.data_dir.is_dir():
        yield Result("document store", str(directory), Status.FAIL,
                     f"data directory {config.data_dir} does not exist: run `eboxd init`")
        return
    existing = next(p for p in (directory, *directory.parents) if p.exists())  # the store creates the rest
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".doctor-") as probe:
            probe.write(b"eboxd doctor\n")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        yield Result("document store", str(directory), Status.FAIL, f"{existing} not writable: {exc.strerror or exc}")
        return
    free = shutil.disk_usage(existing).free
    detail = f"{kind} store, writable, {free / (1 << 30):.1f} GiB free"
    yield Result("document store", str(directory), Status.WARN if free < FREE_SPACE_WARN_BYTES else Status.OK, detail)


def check_master_key(ctx: Context) -> Iterator[Result]:
    if ctx.config is None:
        yield Result("master key", "-", Status.SKIP, "needs a valid configuration")
        return
    path = master_key_path(ctx.config)
    try:
        ctx.secrets = SecretBox.from_file(path)
    except EboxdError as exc:
        yield Result("master key", str(path), Status.FAIL, str(exc))
        return
    yield Result("master key", str(path), Status.OK, "readable")


def check_coda_scanner(ctx: Context) -> Iterator[Result]:
    """The CODA parser's C group scanner: without it CODA files are read all the same, more slowly."""
    from daemon.banking.coda import scan  # noqa: PLC0415 -- loaded for this row only

    if scan.accelerated:
        yield Result("coda scanner", "-", Status.OK, "C extension loaded")
    else:  # not built, or turned off
        yield Result("coda scanner", "-", Status.WARN, f"{scan.regex_path_reason}: CODA files take the slower regex "
                     "path (it is built when eboxd is installed where a C compiler and Python's headers are)")


def check_credentials(ctx: Context) -> Iterator[Result]:
    """Per enterprise: certificate days left (from the database) and a token from the e-Box."""
    if ctx.engine is None or ctx.config is None:
        yield Result("credentials", "-", Status.SKIP, "needs the database")
        return
    with Session(ctx.engine) as session:
        query = select(Enterprise).order_by(Enterprise.number)
        if ctx.enterprises:
            query = query.where(Enterprise.number.in_(ctx.enterprises))
        enterprises = list(session.scalars(query))
        credentials = {c.enterprise_id: c for c in session.scalars(select(Credential).where(Credential.kind == "ebox"))}
        if not enterprises:
            yield Result("credentials", "-", Status.SKIP, "no enterprise registered")
            return
        now = utcnow()
        for enterprise in enterprises:
            yield _certificate(enterprise, credentials.get(enterprise.id), now)
        yield from _tokens(ctx, session, [e for e in enterprises if e.enabled])


def _target(enterprise: Enterprise) -> str:
    return f"{display(enterprise.number)} {enterprise.name}"


def _certificate(enterprise: Enterprise, credential: Credential | None, now: dt.datetime) -> Result:
    status, detail = _certificate_state(enterprise, credential, now)
    return Result("certificate", _target(enterprise), status, detail)


def _certificate_state(enterprise: Enterprise, credential: Credential | None, now: dt.datetime) -> tuple[Status, str]:
    if not enterprise.enabled:
        return Status.SKIP, "enterprise disabled"
    if enterprise.access_via_id is not None:
        return Status.SKIP, "read with its service provider's credential"
    if credential is None or not credential.certificate_pem:
        return Status.FAIL, f"no certificate: run `eboxd enterprise certificate {enterprise.number}`"
    try:
        certificate = ebox.load_certificate(credential.certificate_pem.encode())
    except ebox.CertificateError as exc:
        return Status.FAIL, f"unreadable: {exc}"
    return _validity(enterprise.number, certificate, credential.key_fingerprint, now)


def _validity(number: str, certificate: x509.Certificate, key_fingerprint: str | None,
              now: dt.datetime) -> tuple[Status, str]:
    renew = f"renew: `eboxd enterprise certificate {number} --renew`, then upload it in ChaMan"
    public = certificate.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        return Status.FAIL, f"holds a {type(public).__name__}, not an RSA key: {renew}"
    if key_fingerprint and ebox.public_key_fingerprint(public) != key_fingerprint:
        return Status.FAIL, f"issued for another key than the stored one: import the one made for it, or {renew}"
    if certificate.not_valid_before_utc > now:
        return Status.FAIL, f"not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    not_after = certificate.not_valid_after_utc
    left = days_left(not_after, now)
    if not_after <= now:
        return Status.FAIL, f"expired on {not_after:%Y-%m-%d} ({(now - not_after).days} days ago): {renew}"
    if left < CERTIFICATE_WARN_DAYS:
        return Status.WARN, f"expires in {left} days ({not_after:%Y-%m-%d}): {renew}"
    return Status.OK, f"{left} days left (until {not_after:%Y-%m-%d})"


def days_left(not_after: dt.datetime, now: dt.datetime) -> int:
    return int((not_after - now).total_seconds() // 86400)


def _tokens(ctx: Context, session: Session, enterprises: list[Enterprise]) -> Iterator[Result]:
    """A token for each enabled enterprise (its own credential or its provider's), a few at a time."""
    assert ctx.config is not None
    if not enterprises:
        return
    if not ctx.request_tokens:
        yield Result("token", "-", Status.SKIP, "not requested (--no-token)")
        return
    if ctx.secrets is None:
        yield Result("token", "-", Status.SKIP, "needs the master key")
        return
    environment = ebox_environment(ctx.config)
    pending: list[tuple[Enterprise, ebox.Credential]] = []
    for enterprise in enterprises:
        reader = session.get(Enterprise, enterprise.access_via_id) if enterprise.access_via_id else enterprise
        try:
            pending.append((enterprise, load_credential(session, ctx.secrets, reader or enterprise)))
        except EboxdError as exc:
            yield Result("token", _target(enterprise), Status.FAIL, str(exc))
    retry = ebox.RetryPolicy(max_attempts=2, max_delay=2.0)
    with ebox.TokenProvider(environment, retry=retry, timeout=ctx.config.ebox.timeout_seconds) as provider:

        def request(item: tuple[Enterprise, ebox.Credential]) -> Result:
            enterprise, credential = item
            try:
                token = provider.get_token(credential)
            except ebox.EboxError as exc:
                return Result("token", _target(enterprise), Status.FAIL, explain(exc, enterprise))
            lifetime = round(token.expires_at - time.time())
            return Result("token", _target(enterprise), Status.OK,
                          f"obtained from {environment.name} (valid {lifetime} s)")

        with ThreadPoolExecutor(max_workers=TOKEN_CHECK_THREADS) as pool:
            yield from pool.map(request, pending)


def check_exporters(ctx: Context) -> Iterator[Result]:
    # The exporter plugins (and their per-enterprise connections) add their own check here.
    yield Result("exporters", "-", Status.SKIP, "no exporter connection configured")


def check_daemon(ctx: Context) -> Iterator[Result]:
    if ctx.config is None:
        yield Result("daemon", "-", Status.SKIP, "needs a valid configuration")
        return
    host = ctx.config.service.http_host
    host = "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104 - a wildcard address is reached on loopback
    url = f"http://{host}:{ctx.config.service.http_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
        yield Result("daemon", url, Status.FAIL, f"unhealthy: {_health_summary(body)}")
        return
    except (OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        yield Result("daemon", url, Status.WARN, f"eboxd serve is not running on this node ({reason})")
        return
    yield Result("daemon", url, Status.OK, f"healthy: {_health_summary(body)}")


def _health_summary(body: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in body.items() if key != "status") or "no details"


CHECKS: list[Check] = [
    check_config,
    check_database,
    check_broker,
    check_document_store,
    check_master_key,
    check_coda_scanner,
    check_credentials,
    check_exporters,
    check_daemon,
]


def run_checks(ctx: Context, checks: list[Check] | None = None) -> list[Result]:
    """Run every check in order; one that raises becomes a ``fail`` row and the others go on."""
    results: list[Result] = []
    pika_logger = logging.getLogger("pika")
    previous = pika_logger.level
    pika_logger.setLevel(logging.CRITICAL)  # the broker row says it, once
    try:
        for check in CHECKS if checks is None else checks:
            name = check.__name__.removeprefix("check_").replace("_", " ")
            try:
                results.extend(check(ctx))
            except Exception as exc:  # a broken check must not hide the others
                results.append(Result(name, "-", Status.FAIL, f"check crashed: {type(exc).__name__}: {exc}"))
    finally:
        pika_logger.setLevel(previous)
        ctx.close()
    return results
