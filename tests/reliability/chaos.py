"""The chaos run: the whole pipeline as real processes while things break, then a count of what
was lost or duplicated against the sandbox's ground truth. Used by ``test_chaos.py`` (about 1,000
documents) and ``benchmarks/soak.py`` (larger).

Set-up: a private RabbitMQ and PostgreSQL (``scripts/services`` under a temporary directory, free
ports: the shared test servers are never touched, since the run pauses and resumes its own), an
in-process e-Box sandbox with 14 documents per enterprise (12 letters, 9 of them payment letters),
tokens living ``TOKEN_LIFETIME`` seconds, and fault rules: 10 % 5xx, 5 % slower than the client's
timeout, 1 % of downloads cut off, 2 % of valid tokens refused as expired. Every enterprise exports
each document to a ZIP drop folder of its own (bare files or one-document bags, alternately);
every ``exact_every``-th enterprise also to Exact Online: an in-process Exact sandbox, one Exact
user shared by those enterprises, each its own division, and faults every few seconds — stored in
Exact but the answer lost — so an export whose document already exists must find it, not create
it again (see :mod:`tests.reliability.chaos_exact`).

Run: ``eboxd serve`` and two ``eboxd worker`` process groups; as the documents arrive, a worker is
SIGKILLed (with its dramatiq children) and a new one started, repeatedly; RabbitMQ and PostgreSQL
are each stopped and started once (``pause``/``resume``: same data). A process that exits on its
own is started again, as systemd would (``Restart=on-failure``): exit code 2 before it was ready
(eboxd's answer to a database it cannot reach at start-up) is counted as ``startup_exits``, any
other exit is a crash and fails the run. Every few seconds, the enterprises with letters not
stored yet are asked to poll now (what ``eboxd poll N…`` does): a poll failed by the faults is
otherwise retried only after its backoff, and one killed with its worker once its lease expires
(``[poll] lease_seconds``, 60 s here).

Once every document is stored and exported, a CODA file paying a known half of the payment
letters by their OGM goes into serve's drop folder; serve imports it and a worker matches it.

Checks (:class:`ChaosReport`): every attachment stored once (rows, and the store's file with its
bytes), every document exported once per target (one completed ledger row per document and target,
the drop folder's file with its bytes and no temporary file, and in Exact, counted by the
exporter's marker, one document in its enterprise's division with one attachment of its bytes,
none in another's), every outbox
event received once on the events exchange and every fact announced by one event, exactly the
paid letters matched (one ``payment.matched`` each).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from eboxd_exact.sandbox import ExactSandboxServer, serve_exact_sandbox
from eboxd_zip.bundle import document_path
from sqlalchemy.orm import Session

from benchmarks._fleet import Bench, onboard
from daemon.banking import make_ogm, parse_ogm
from daemon.banking.coda_writer import MovementSpec, StatementSpec, coda_bytes
from daemon.config import Config, load_config
from daemon.db import create_db_engine, upgrade
from daemon.db.models import (
    BankTransaction,
    Document,
    Enterprise,
    Export,
    Message,
    OutboxRow,
    PaymentRequest,
    PollState,
)
from daemon.exports import enable_exporter, export_document_of
from daemon.plugins import PluginManager
from daemon.poll import request_poll
from daemon.sandbox.ebox import EboxSandbox, SeedLetter, serve_sandbox
from daemon.secrets import SecretBox, create_key_file, master_key_path
from daemon.store import create_store
from tests.amqp_helpers import bind_event_queue, drain
from tests.integration.processes import REPO, base_env, free_port
from tests.reliability.chaos_exact import ExactFaults, check_exact, connect_exact, reconciled_exports

__all__ = ["ChaosPlan", "ChaosReport", "run_chaos"]

SERVICES = REPO / "scripts" / "services"
DOCS_PER_ENTERPRISE = 14
CLIENT_TIMEOUT = 1.0  # [ebox] timeout_seconds; the slow fault answers after CLIENT_TIMEOUT + 0.5
TOKEN_LIFETIME = 30  # seconds: each enterprise's token is refreshed several times during a run
EVENTS_EXCHANGE = "eboxd.events"
OUTAGE_SECONDS = 2.0  # how long RabbitMQ and PostgreSQL stay down
MAX_RESTARTS = 5  # a process exiting more often than this is broken, not unlucky


@dataclass(frozen=True)
class ChaosPlan:
    """What to run and what to break. Fractions are of the documents expected."""

    documents: int = 1_000
    worker_kills: int = 4
    kill_from: float = 0.08
    kill_until: float = 0.85
    broker_restart_at: float | None = 0.3
    db_restart_at: float | None = 0.55
    worker_threads: int = 4
    seed: int = 31
    timeout: float = 300.0  # seconds for the documents and exports, after set-up
    poll_every: float = 3.0
    exact_every: int = 2  # every n-th enterprise exports to Exact as well (0: none)


@dataclass
class ChaosReport:
    docs: int = 0
    lost: int = 0
    duplicated: int = 0
    exports_lost: int = 0
    exports_duplicated: int = 0
    events_lost: int = 0
    events_duplicated: int = 0
    events_redelivered: int = 0  # sent again after the broker went away before confirming: same id
    matches_wrong: int = 0
    worker_kills: int = 0
    broker_restarts: int = 0
    db_restarts: int = 0
    seconds: float = 0.0  # from starting the processes to the payments matched
    paid: int = 0
    startup_exits: Counter[str] = field(default_factory=Counter)  # exit 2 at start-up, restarted as by systemd
    crashes: list[str] = field(default_factory=list)  # any other exit of a process
    faults_fired: Counter[str] = field(default_factory=Counter)  # by kind: the e-Box did misbehave
    timeline: list[tuple[float, str]] = field(default_factory=list)  # (seconds since the start, what)
    started: float = field(default_factory=time.monotonic)
    leases_held_at_end: int = 0  # polls killed with their worker whose lease had not expired yet
    store_unreferenced: int = 0  # files in the document store no document row names
    staging_leftovers: int = 0  # downloads cut short by a SIGKILL, left in the store's staging directory
    exact_docs: int = 0  # documents expected in Exact (those of the Exact enterprises)
    exact_reconciled: int = 0  # Exact exports that found their document made by an earlier attempt
    exact_faults: Counter[str] = field(default_factory=Counter)  # Exact sandbox faults met, by kind:entity
    details: list[str] = field(default_factory=list)

    def mark(self, what: str) -> None:
        """Note when something first happened (the timeline soak.py prints)."""
        if not any(label == what for _, label in self.timeline):
            self.timeline.append((time.monotonic() - self.started, what))

    def line(self) -> str:
        return (f"docs={self.docs} lost={self.lost} duplicated={self.duplicated} exports_lost={self.exports_lost} "
                f"exports_duplicated={self.exports_duplicated} events_lost={self.events_lost} "
                f"events_duplicated={self.events_duplicated} matches_wrong={self.matches_wrong} "
                f"worker_kills={self.worker_kills} broker_restarts={self.broker_restarts} "
                f"db_restarts={self.db_restarts} seconds={self.seconds:.0f} "
                f"events_redelivered={self.events_redelivered} paid={self.paid} "
                f"startup_exits={sum(self.startup_exits.values())} store_unreferenced={self.store_unreferenced} "
                f"staging_leftovers={self.staging_leftovers} exact_docs={self.exact_docs} "
                f"exact_reconciled={self.exact_reconciled} exact_faults={sum(self.exact_faults.values())}")

    def problems(self) -> list[str]:
        """Every count that must be 0 and is not, with what was wrong."""
        counts = {"lost": self.lost, "duplicated": self.duplicated, "exports_lost": self.exports_lost,
                  "exports_duplicated": self.exports_duplicated, "events_lost": self.events_lost,
                  "events_duplicated": self.events_duplicated, "matches_wrong": self.matches_wrong}
        wrong = [f"{name}={value}" for name, value in counts.items() if value]
        if self.crashes:
            wrong.append(f"{len(self.crashes)} processes crashed (and were started again):")
            wrong += self.crashes
        return wrong + self.details


# -- private servers ------------------------------------------------------------------------------

class Service:
    """One of ``scripts/services`` (rabbitmq.sh, postgres.sh) with a state directory of its own."""

    def __init__(self, script: str, base: Path, env: dict[str, str]) -> None:
        self.script = SERVICES / script
        self.env = {**os.environ, "EBOXD_SERVICES_DIR": str(base), **env}

    def __call__(self, command: str) -> str:
        done = subprocess.run([str(self.script), command], env=self.env, capture_output=True, text=True,
                              check=False, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"{self.script.name} {command} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done.stdout.strip()


@contextmanager
def private_services(base: Path) -> Iterator[tuple[Service, str, Service, str]]:
    """(rabbitmq, its URL, postgres, its URL), stopped and deleted at the end."""
    rabbitmq = Service("rabbitmq.sh", base, {
        "EBOXD_RABBITMQ_PORT": str(free_port()), "EBOXD_RABBITMQ_DIST_PORT": str(free_port()),
        "EBOXD_RABBITMQ_EPMD_PORT": str(free_port()),
        "EBOXD_RABBITMQ_NODENAME": f"eboxd-chaos-{os.getpid()}@localhost"})
    postgres = Service("postgres.sh", base, {"EBOXD_POSTGRES_PORT": str(free_port())})
    try:
        amqp_url = rabbitmq("start")
        database_url = postgres("start")
        yield rabbitmq, amqp_url, postgres, database_url
    finally:
        for service in (rabbitmq, postgres):
            try:
                service("stop")
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"warning: {exc}", file=sys.stderr)


# -- eboxd processes ------------------------------------------------------------------------------

READY = {"serve": '"daemon.ready"', "worker": "Worker process is ready for action"}


@dataclass
class Child:
    name: str
    args: list[str]
    popen: subprocess.Popen[bytes]
    log: Path
    log_offset: int  # where this run of the process starts in its log (a restart appends)

    def output(self) -> str:
        with self.log.open("rb") as file:
            file.seek(self.log_offset)
            return file.read().decode(errors="replace")


class Fleet:
    """``eboxd serve`` and workers; one that exits unasked is started again (as systemd would).

    Exiting with code 2 before being ready is eboxd's documented answer to a database or broker
    it cannot reach at start-up (systemd starts it again 10 s later): counted in
    ``startup_exits``. Any other exit is a crash."""

    def __init__(self, env: dict[str, str], directory: Path, threads: int) -> None:
        self.env, self.directory, self.threads = env, directory, threads
        self.children: dict[str, Child] = {}
        self.startup_exits: Counter[str] = Counter()
        self.crashes: list[str] = []
        self.kills = 0
        self._serial = 0

    def start(self, name: str, args: list[str]) -> Child:
        data_dir = self.directory / name
        data_dir.mkdir(parents=True, exist_ok=True)
        log = self.directory / f"{name}.log"
        offset = log.stat().st_size if log.exists() else 0
        with log.open("ab") as output:
            popen = subprocess.Popen([sys.executable, "-m", "daemon", *args],
                                     env={**self.env, "EBOXD_DAEMON__DATA_DIR": str(data_dir)},
                                     stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        self.children[name] = child = Child(name, args, popen, log, offset)
        return child

    def worker(self) -> Child:
        self._serial += 1
        return self.start(f"worker-{self._serial}", ["worker", "--processes", "1", "--threads", str(self.threads)])

    def kill_a_worker(self) -> None:
        """SIGKILL the oldest worker with its dramatiq processes, and start a new one."""
        name = next(name for name in self.children if name.startswith("worker-"))
        child = self.children.pop(name)
        os.killpg(child.popen.pid, signal.SIGKILL)
        child.popen.wait(10)
        self.kills += 1
        self.worker()

    def watch(self) -> None:
        for child in list(self.children.values()):
            if child.popen.poll() is None:
                continue
            kind, output = child.name.partition("-")[0], child.output()
            if child.popen.returncode == 2 and READY[kind] not in output:
                self.startup_exits[kind] += 1
            else:
                self.crashes.append(f"{child.name} exited with {child.popen.returncode}:\n{output[-3000:]}")
            if self.startup_exits[kind] + len(self.crashes) > MAX_RESTARTS:
                raise RuntimeError(f"{child.name} keeps exiting ({child.popen.returncode})\n{self.logs()}")
            self.start(child.name, child.args)

    def stop(self, timeout: float = 60) -> dict[str, int]:
        for child in self.children.values():
            if child.popen.poll() is None:
                child.popen.send_signal(signal.SIGTERM)
        codes = {}
        for child in self.children.values():
            try:
                codes[child.name] = child.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(child.popen.pid, signal.SIGKILL)
                child.popen.wait(10)
                codes[child.name] = -9
        return codes

    def logs(self, chars: int = 4000) -> str:
        return "\n".join(f"--- {log.name} ---\n{log.read_text(errors='replace')[-chars:]}"
                         for log in sorted(self.directory.glob("*.log")))


# -- the run --------------------------------------------------------------------------------------

@dataclass
class World:
    plan: ChaosPlan
    workdir: Path
    sandbox: EboxSandbox
    config: Config
    engine: sa.Engine
    amqp_url: str
    events_queue: str
    export_dir: Path
    coda_dir: Path
    letters: dict[str, SeedLetter]
    exact: ExactSandboxServer
    exact_divisions: dict[str, int]  # enterprise number → its Exact division (the Exact enterprises only)

    def expected_exports(self) -> int:
        """Documents × their enterprise's targets: the ZIP folder, and Exact for some."""
        return sum(len(letter.attachments) * (1 + (letter.enterprise_number in self.exact_divisions))
                   for letter in self.letters.values())


def _layout(number: str) -> str:
    return "zip" if int(number) % 2 else "files"


def _config(workdir: Path, database_url: str, sandbox_url: str) -> Config:
    environ = {"EBOXD_DATABASE__URL": database_url, "EBOXD_DAEMON__DATA_DIR": str(workdir / "state"),
               "EBOXD_EBOX__SANDBOX_URL": sandbox_url, "EBOXD_DOCUMENTS__DIRECTORY": str(workdir / "documents")}
    config = load_config(environ=environ)
    create_key_file(master_key_path(config))
    return config


def _enable_zip(engine: sa.Engine, config: Config, folder: Path) -> None:
    manager = PluginManager().load()
    with Session(engine) as session, session.begin():
        for enterprise in session.scalars(sa.select(Enterprise)):
            enable_exporter(session, SecretBox.from_config(config), manager, enterprise, "zip",
                            {"dir": str(folder), "layout": _layout(enterprise.number)})


def _add_faults(sandbox: EboxSandbox) -> None:
    sandbox.add_fault("error", rate=0.04, status=503)
    sandbox.add_fault("error", rate=0.03, status=500)
    sandbox.add_fault("error", rate=0.03, status=502)
    sandbox.add_fault("slow", rate=0.05, delay=CLIENT_TIMEOUT + 0.5)
    sandbox.add_fault("truncate", rate=0.01)  # downloads only
    sandbox.add_fault("expired_token", rate=0.02)


def _counts(engine: sa.Engine) -> tuple[int, int, int, int, int]:
    """(documents stored, messages not fetched, exports completed, outbox rows unsent, poll leases held)."""
    with engine.connect() as conn:
        documents = conn.scalar(sa.select(sa.func.count()).select_from(Document)) or 0
        pending = conn.scalar(sa.select(sa.func.count()).where(Message.fetch_state != "fetched")) or 0
        exported = conn.scalar(sa.select(sa.func.count()).where(Export.status == "completed")) or 0
        unsent = conn.scalar(sa.select(sa.func.count()).where(OutboxRow.sent_at.is_(None))) or 0
        leases = conn.scalar(sa.select(sa.func.count()).where(PollState.lease_token.is_not(None))) or 0
    return int(documents), int(pending), int(exported), int(unsent), int(leases)


def _safely(read: Callable[[], Any], default: Any) -> Any:
    """A read of the runner's own that may meet the database while it is down."""
    try:
        return read()
    except sa.exc.OperationalError:
        return default


def _drive(world: World, fleet: Fleet, rabbitmq: Service, postgres: Service, report: ChaosReport,
           exact_faults: ExactFaults) -> None:
    """Until everything is stored, exported and relayed, breaking things on the way."""
    plan, expected = world.plan, sum(len(letter.attachments) for letter in world.letters.values())
    exports = world.expected_exports()
    kills = [plan.kill_from + i * (plan.kill_until - plan.kill_from) / max(plan.worker_kills - 1, 1)
             for i in range(plan.worker_kills)]
    deadline, last_poll_request, last_state = time.monotonic() + plan.timeout, 0.0, None
    while True:
        fleet.watch()
        state = _safely(lambda: _counts(world.engine), last_state)
        if state is not None:
            last_state = state
            documents, pending, exported, unsent, leases = state
            if documents == expected:
                report.mark("every document stored")
            if exported == exports:
                report.mark("every document exported to every target")
            # A poll lease may still be held by a worker killed mid-poll (it expires after
            # [poll] lease_seconds): nothing is missing for it, so the run need not wait.
            if (documents, pending, exported, unsent) == (expected, 0, exports, 0):
                report.mark("outbox drained")
                report.leases_held_at_end = leases
                return
            done = documents / expected
            if world.exact_divisions and exported < exports:
                exact_faults.tick(time.monotonic())
            if kills and done >= kills[0]:
                kills.pop(0)
                fleet.kill_a_worker()
                report.mark(f"worker kill {fleet.kills} at {documents} documents")
            if plan.broker_restart_at is not None and not report.broker_restarts and done >= plan.broker_restart_at:
                rabbitmq("pause")
                time.sleep(OUTAGE_SECONDS)
                rabbitmq("resume")
                report.broker_restarts += 1
                report.mark(f"RabbitMQ restarted at {documents} documents")
            if plan.db_restart_at is not None and not report.db_restarts and done >= plan.db_restart_at:
                postgres("pause")
                time.sleep(OUTAGE_SECONDS)
                postgres("resume")
                report.db_restarts += 1
                report.mark(f"PostgreSQL restarted at {documents} documents")
            if documents < expected and time.monotonic() - last_poll_request > plan.poll_every:
                _safely(lambda: request_poll(world.engine, _incomplete(world)), 0)
                last_poll_request = time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"after {plan.timeout:.0f} s: (documents, messages not fetched, exports completed, "
                               f"outbox unsent, poll leases) = {last_state} of {expected} documents, {exports} "
                               f"exports\n{fleet.logs()}")
        time.sleep(0.25)


def _incomplete(world: World) -> list[int]:
    """Enterprises with letters not stored yet: what an operator would ask to poll now."""
    with world.engine.connect() as conn:
        stored = set(conn.execute(sa.select(Message.ebox_message_id)).scalars())
        ids = dict(conn.execute(sa.select(Enterprise.number, Enterprise.id)).all())
    return sorted({ids[letter.enterprise_number] for mid, letter in world.letters.items() if mid not in stored})


def _paid_letters(letters: dict[str, SeedLetter]) -> dict[str, SeedLetter]:
    """Every other payment letter whose OGM no other letter carries (the bank pays those)."""
    payers = sorted((letter for letter in letters.values() if letter.payment is not None), key=lambda x: x.message_id)
    ogms = Counter(letter.payment.ogm for letter in payers if letter.payment is not None)
    return {letter.message_id: letter for letter in payers[::2]
            if letter.payment is not None and ogms[letter.payment.ogm] == 1}


def _pay(world: World, fleet: Fleet, paid: dict[str, SeedLetter]) -> int:
    """Drop a CODA file paying ``paid`` (and one transfer paying nothing of ours); wait until matched."""
    movements = [MovementSpec.ogm(-letter.payment.amount, parse_ogm(letter.payment.ogm).digits,
                                  counterparty_account=letter.payment.iban, counterparty_name="Administration")
                 for letter in paid.values() if letter.payment is not None]
    movements.append(MovementSpec.ogm(Decimal("-12.34"), make_ogm(9_999_999_999).digits))
    data = coda_bytes([StatementSpec(date=dt.date.today(), movements=movements)])
    partial = world.coda_dir / "chaos.cod.part"
    partial.write_bytes(data)
    partial.rename(world.coda_dir / "chaos.cod")  # whole or not at all, as the drop folder asks

    def examined() -> bool:
        with world.engine.connect() as conn:
            stored = conn.scalar(sa.select(sa.func.count()).select_from(BankTransaction)) or 0
            waiting = conn.scalar(sa.select(sa.func.count()).where(BankTransaction.match_state.is_(None))) or 0
            unsent = conn.scalar(sa.select(sa.func.count()).where(OutboxRow.sent_at.is_(None))) or 0
        return stored == len(movements) and waiting == 0 and unsent == 0

    deadline = time.monotonic() + 60
    while not examined():
        fleet.watch()
        if time.monotonic() > deadline:
            raise TimeoutError(f"the CODA file was not imported and matched within 60 s\n{fleet.logs()}")
        time.sleep(0.25)
    return len(movements)


# -- the checks -----------------------------------------------------------------------------------

def _excess(counter: Counter[Any]) -> int:
    return sum(n - 1 for n in counter.values() if n > 1)


def _check_documents(world: World, report: ChaosReport) -> None:
    store = create_store(world.config, world.engine)
    wanted = {(mid, a.attachment_id): hashlib.sha256(a.content).hexdigest()
              for mid, letter in world.letters.items() for a in letter.attachments}
    with world.engine.connect() as conn:
        rows = conn.execute(sa.select(Message.ebox_message_id, Document.attachment_id, Document.sha256,
                                      Document.storage_key).join(Message, Message.id == Document.message_id)).all()
        messages = Counter(conn.execute(sa.select(Message.ebox_message_id)).scalars())
    stored = Counter((row.ebox_message_id, row.attachment_id) for row in rows)
    bad = []
    for row in rows:
        try:
            with store.open(row.storage_key) as file:
                intact = hashlib.sha256(file.read()).hexdigest() == row.sha256 == wanted.get(
                    (row.ebox_message_id, row.attachment_id))
        except OSError:
            intact = False
        if not intact:
            bad.append((row.ebox_message_id, row.attachment_id))
    missing = set(wanted) - set(stored)
    root = world.workdir / "documents"
    files = [path for path in root.rglob("*") if path.is_file()]
    staging = [path for path in files if ".staging" in path.relative_to(root).parts]
    report.staging_leftovers = len(staging)
    kept = {path.name for path in files if path not in staging}
    report.store_unreferenced = len(kept - {row.sha256 for row in rows})
    report.docs = len(wanted)
    report.lost = len(missing) + len(bad)
    report.duplicated = _excess(stored) + _excess(messages) + len(set(stored) - set(wanted))
    if missing or bad:
        report.details.append(f"documents missing {sorted(missing)[:5]}, unreadable or wrong {bad[:5]}")
    if report.duplicated:
        report.details.append(f"documents stored twice {[k for k, n in stored.items() if n > 1][:5]}, messages "
                              f"twice {[k for k, n in messages.items() if n > 1][:5]}")


def _dropped_content(path: Path) -> bytes:
    if path.suffix != ".zip":
        return path.read_bytes()
    with zipfile.ZipFile(path) as bag:
        [document] = [name for name in bag.namelist() if "/data/government-letters/" in name]
        return bag.read(document)


def _check_exports(world: World, report: ChaosReport) -> None:
    """Once per target: the ledger (one completed row per document and target), the ZIP drop
    folder, and Exact's divisions (:func:`check_exact`)."""
    store = create_store(world.config, world.engine)
    folder = world.export_dir
    with Session(world.engine) as session:
        ids = session.scalars(sa.select(Document.id)).all()
        docs = [export_document_of(session, store, document_id) for document_id in ids]
        ledger = session.execute(sa.select(Export.document_id, Export.exporter, Export.status)).all()
    expected: dict[Path, str] = {}
    targets: set[tuple[int, str]] = set()
    for doc in docs:
        assert doc is not None
        path = Path(document_path(doc, doc.enterprise_number))
        bare = _layout(doc.enterprise_number) == "files"
        expected[folder / doc.enterprise_number / (path if bare else Path(f"{path.stem}.zip"))] = doc.sha256
        targets.add((doc.document_id, "zip"))
        if doc.enterprise_number in world.exact_divisions:
            targets.add((doc.document_id, "exact"))
    found = {path for path in folder.rglob("*") if path.is_file()}
    wrong = [path for path in found & set(expected)
             if hashlib.sha256(_dropped_content(path)).hexdigest() != expected[path]]
    # Each enterprise has one target per exporter: (document, exporter) names the target.
    completed = Counter((row.document_id, row.exporter) for row in ledger if row.status == "completed")
    per_target = Counter((row.document_id, row.exporter) for row in ledger)
    not_completed = targets - set(completed)
    exact = check_exact(world.exact.state, world.exact_divisions, [doc for doc in docs if doc is not None])
    report.exact_docs, report.exact_reconciled = exact.documents, reconciled_exports(world.engine)
    report.exports_lost = len(set(expected) - found) + len(wrong) + len(not_completed) + exact.lost
    report.exports_duplicated = (len(found - set(expected)) + _excess(completed) + _excess(per_target)
                                 + len(set(per_target) - targets) + exact.duplicated)
    if report.exports_lost:
        report.details.append(f"exports missing {sorted(map(str, set(expected) - found))[:5]}, wrong content "
                              f"{wrong[:5]}, ledger not completed for (document, exporter) {sorted(not_completed)[:5]}")
    if report.exports_duplicated:
        report.details.append(f"extra files in the drop folder {sorted(map(str, found - set(expected)))[:5]}, "
                              f"ledger rows for no target {sorted(set(per_target) - targets)[:5]}")
    report.details += exact.details


def _in_doubt(directory: Path) -> set[str]:
    """Event ids serve's relay said it sent without a confirm (``outbox.publish_in_doubt``): the
    broker went away with them in flight, so they were sent again and may arrive twice."""
    ids: set[str] = set()
    for log in directory.glob("serve*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if '"outbox.publish_in_doubt"' in line:
                ids.update(json.loads(line)["event_ids"])
    return ids


_FACT_KEYS = {"be.eboxd.message.received": ("message_id",), "be.eboxd.payment.requested": ("message_id",),
              "be.eboxd.document.stored": ("message_id", "attachment_id"),
              "be.eboxd.export.completed": ("document_id", "exporter", "target"),
              "be.eboxd.export.failed": ("document_id", "exporter", "target")}


def _check_events(world: World, report: ChaosReport) -> None:
    with world.engine.connect() as conn:
        outbox = dict(conn.execute(sa.select(OutboxRow.event_id, OutboxRow.topic)
                                   .where(OutboxRow.kind == "event")).all())
    received = drain(world.amqp_url, world.events_queue, expect=len(outbox), timeout=60)
    ids = Counter(body["id"] for _, body in received)
    facts: Counter[tuple[str, ...]] = Counter()
    for event_id, body in {body["id"]: body for _, body in received}.items():
        key = _FACT_KEYS.get(body["type"], ("payment_request_id",))
        facts[(body["type"], *(str(body["data"].get(name)) for name in key))] += 1
        if event_id not in outbox:
            report.details.append(f"an event not in the outbox arrived: {body}")
    in_doubt = _in_doubt(world.workdir / "processes")
    resent = Counter({event_id: n for event_id, n in ids.items() if event_id in in_doubt})
    twice = [event_id for event_id, n in ids.items() if n > 1 and event_id not in in_doubt]
    fact_twice = [fact for fact, n in facts.items() if n > 1]
    report.events_lost = len(set(outbox) - set(ids))
    report.events_redelivered = _excess(resent)
    report.events_duplicated = _excess(ids) - report.events_redelivered + len(fact_twice) + len(set(ids) - set(outbox))
    if report.events_lost:
        report.details.append(f"events never received: {Counter(outbox[i] for i in set(outbox) - set(ids))}")
    if report.events_duplicated:
        report.details.append(f"events received twice though never in doubt: {twice[:5]}; facts announced by two "
                              f"events {fact_twice[:5]}")


def _check_matches(world: World, report: ChaosReport, paid: dict[str, SeedLetter]) -> None:
    with world.engine.connect() as conn:
        status = dict(conn.execute(sa.select(Message.ebox_message_id, PaymentRequest.status)
                                   .join(Message, Message.id == PaymentRequest.message_id)).all())
        matched_events = Counter(payload["data"]["payment_request_id"] for payload in conn.execute(
            sa.select(OutboxRow.payload).where(OutboxRow.topic == "be.eboxd.payment.matched")).scalars())
        paid_ids = set(conn.execute(sa.select(PaymentRequest.id).where(PaymentRequest.status == "paid")).scalars())
    marked = {mid for mid, state in status.items() if state == "paid"}
    others = {mid: state for mid, state in status.items() if mid not in paid and state != "open"}
    report.paid = len(paid)
    report.matches_wrong = (len(marked ^ set(paid)) + len(others) + _excess(matched_events)
                            + len(set(matched_events) ^ paid_ids))
    if report.matches_wrong:
        report.details.append(f"paid but not marked {sorted(set(paid) - marked)[:5]}, marked but not paid "
                              f"{sorted(marked - set(paid))[:5]}, unpaid letters not open {list(others.items())[:5]}, "
                              f"matched events {len(matched_events)} for {len(paid_ids)} paid requests")


# -- entry point ----------------------------------------------------------------------------------

def _set_up(plan: ChaosPlan, workdir: Path, stack: ExitStack, database_url: str, amqp_url: str) -> World:
    enterprises = math.ceil(plan.documents / DOCS_PER_ENTERPRISE)
    sandbox = stack.enter_context(serve_sandbox("127.0.0.1", 0, seed=plan.seed, enterprises=enterprises,
                                                token_lifetime=TOKEN_LIFETIME))
    config = _config(workdir, database_url, sandbox.url)
    engine = create_db_engine(config.database_url)
    stack.callback(engine.dispose)
    upgrade(engine)
    onboard(Bench(workdir, config, engine, {}), sandbox)  # one shared key: see benchmarks/_fleet.py
    export_dir, coda_dir = workdir / "handover", workdir / "coda"
    coda_dir.mkdir()
    _enable_zip(engine, config, export_dir)
    with sandbox.state.lock:
        letters = {letter.message_id: letter for letter in sandbox.state.catalogue.letters}
    exact = stack.enter_context(serve_exact_sandbox("127.0.0.1", 0, seed=plan.seed))
    numbers = sorted({letter.enterprise_number for letter in letters.values()})
    chosen = numbers[::plan.exact_every] if plan.exact_every else []
    divisions = connect_exact(engine, SecretBox.from_config(config), exact, chosen) if chosen else {}
    queue = bind_event_queue(amqp_url, EVENTS_EXCHANGE)
    return World(plan, workdir, sandbox, config, engine, amqp_url, queue, export_dir, coda_dir, letters, exact,
                 divisions)


def run_chaos(plan: ChaosPlan, *, keep: Path | None = None) -> ChaosReport:
    """One chaos run; ``keep``: copy the logs there (they go with the temporary directory)."""
    report = ChaosReport()
    # Short and traversable: PostgreSQL (user postgres when root) puts its socket in here.
    workdir = Path(tempfile.mkdtemp(prefix="eboxd-chaos-", dir="/tmp"))
    workdir.chmod(0o755)
    fleet: Fleet | None = None
    try:
        with ExitStack() as stack:
            rabbitmq, amqp_url, postgres, database_url = stack.enter_context(private_services(workdir / "svc"))
            world = _set_up(plan, workdir, stack, database_url, amqp_url)
            env = base_env(database_url=database_url, amqp_url=amqp_url, exchange=EVENTS_EXCHANGE,
                           sandbox_url=world.sandbox.url, key_file=master_key_path(world.config),
                           EBOXD_DOCUMENTS__DIRECTORY=str(workdir / "documents"),
                           EBOXD_EBOX__TIMEOUT_SECONDS=str(CLIENT_TIMEOUT),
                           # A poll killed with its worker is polled again once its lease expires.
                           EBOXD_POLL__LEASE_SECONDS="60", EBOXD_WORKER__TIME_LIMIT_SECONDS="45",
                           EBOXD_DOCUMENTS__REFETCH_AFTER_SECONDS="10", EBOXD_SERVICE__HTTP_PORT="0",
                           EBOXD_BANKING__CODA_DROP_DIR=str(world.coda_dir),
                           EBOXD_BANKING__CODA_DROP_SETTLE_SECONDS="0")
            fleet = Fleet(env, workdir / "processes", plan.worker_threads)
            _add_faults(world.sandbox)
            exact_faults = ExactFaults(world.exact)
            report.mark("set up: servers started, enterprises onboarded")
            started = time.monotonic()
            fleet.start("serve", ["serve"])
            fleet.worker()
            fleet.worker()
            _drive(world, fleet, rabbitmq, postgres, report, exact_faults)
            report.exact_faults = exact_faults.fired()
            paid = _paid_letters(world.letters)
            report.mark("CODA file dropped")
            _pay(world, fleet, paid)
            report.mark("CODA file imported and matched")
            report.seconds = time.monotonic() - started
            report.worker_kills = fleet.kills
            report.startup_exits, report.crashes = fleet.startup_exits, fleet.crashes
            for rule in world.sandbox.state.faults:
                report.faults_fired[rule.kind] += rule.fired
            codes = fleet.stop()
            if any(codes.values()):
                report.details.append(f"exit codes at the end: {codes}")
            _check_documents(world, report)
            _check_exports(world, report)
            _check_events(world, report)
            _check_matches(world, report, paid)
        return report
    finally:
        if fleet is not None:
            fleet.stop(timeout=10)
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                for log in (workdir / "processes").glob("*.log"):
                    shutil.copy(log, keep / log.name)
        shutil.rmtree(workdir, ignore_errors=True)
