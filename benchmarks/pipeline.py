"""Documents per second end to end, and the memory of eboxd's processes as the count grows.

Set-up per run: the e-Box sandbox in this process, each e-Box with its twelve seeded letters (NSSO
and FPS Finance, French, Dutch and German, nine of them payment letters) whose PDFs are padded to
100 kB (14 documents per e-Box: 12 PDFs and 2 small CSV annexes). The padding is an unreferenced
binary stream: it is downloaded, hashed and stored like the rest, but the text extraction does not
parse it, where a real 100 kB letter would make it read embedded fonts or images. The enterprises
are onboarded in bulk sharing one RSA key (see ``_fleet``) and left disabled; ``eboxd serve`` and
``eboxd worker`` (default configuration: 2 processes × 8 threads, every queue) are started and
ready, on SQLite (``--database postgresql``: a fresh database on the test server instead), the
filesystem document store and a private vhost of the test RabbitMQ.

The clock starts when every enterprise is enabled at once and stops when every document is stored
and the outbox is empty: it covers serve claiming the polls, the relay publishing them, the polls
(token, listings, 12 new messages each with their events and fetch tasks), the fetches (attachment
list, download and digest check, the store, PDF text, language and payment extraction, payment
data, rows and events) and the relay publishing every event to RabbitMQ with confirms. Two runs,
about 1,000 and 5,000 documents, each on a fresh database: ``peak_rss_mib`` is the largest peak
resident set (VmHWM) of a worker process, ``serve_rss_mib`` serve's; memory is flat when the
larger run's peak is no larger than the smaller one's.

Peers in the same run: ``sequential`` polls and fetches one enterprise after the other in one
thread of this process, through the same functions and no broker (10 e-Boxes); ``sandbox_alone``
is how many of these documents per second the sandbox serves to a load generator in another
process (8 connections, no eboxd). The CPU seconds of each part show where the time goes
(``other``: RabbitMQ, PostgreSQL if used, and anything else that ran on the machine). Last line:
``docs=… docs_per_s=… peak_rss_mib=… peak_rss_mib_small=… peak_rss_mib_large=… …``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._fleet import (
    Children,
    enable_all,
    machine_cpu_seconds,
    onboard,
    outbox_pending,
    own_cpu_seconds,
    reading,
    setup,
)
from benchmarks._services import postgres_database, private_vhost, rabbitmq
from daemon import ebox
from daemon.db.models import Document, Message
from daemon.fetch import fetch_message
from daemon.logging import configure_logging
from daemon.poll import EboxAccess, claim_due_polls, poll_enterprise, start_poll
from daemon.sandbox.ebox import serve_sandbox
from daemon.sandbox.ebox.state import DEFAULT_SCOPES, IssuedToken
from daemon.secrets import SecretBox
from daemon.store import create_store

PDF_SIZE = 100 * 1024
DOCS_PER_EBOX = 14
COUNTS = (1_000, 5_000)
SEQUENTIAL_EBOXES = 10
LOADGEN_SECONDS = 3.0
STALL_SECONDS = 120.0
CORES = os.cpu_count() or 1


@dataclass
class Result:
    docs: int
    seconds: float
    peak_rss_mib: float  # the largest worker process
    serve_rss_mib: float
    processes: dict[str, float]
    cpu: dict[str, float]  # CPU seconds during the run: sandbox, serve, worker, other

    @property
    def docs_per_s(self) -> float:
        return self.docs / self.seconds


def stored(engine: sa.Engine) -> tuple[int, int]:
    """(documents stored, messages not fetched yet)."""
    with reading(engine) as conn:
        documents = conn.execute(sa.select(sa.func.count()).select_from(Document)).scalar_one()
        pending = conn.execute(sa.select(sa.func.count()).where(Message.fetch_state != "fetched")).scalar_one()
    return int(documents), int(pending)


def wait_ready(children: Children, workdir: Path, processes: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        children.sample()  # raises if one of them exited
        serve = (workdir / "serve.log").read_text(errors="replace")
        worker = (workdir / "worker.log").read_text(errors="replace")
        if "daemon.ready" in serve and worker.count("Worker process is ready for action") >= processes:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("serve or the worker did not get ready")
        time.sleep(0.2)


def run(docs_wanted: int, amqp_url: str, seed: int, database: str) -> Result:
    """One end-to-end run on a fresh sandbox and database."""
    sandbox = serve_sandbox("127.0.0.1", 0, seed=seed, enterprises=math.ceil(docs_wanted / DOCS_PER_EBOX),
                            pdf_size=PDF_SIZE)
    expected = sum(len(letter.attachments) for letter in sandbox.catalogue.letters)
    with sandbox, tempfile.TemporaryDirectory(prefix="eboxd-bench-") as tmp, ExitStack() as stack:
        database_url = stack.enter_context(postgres_database()) if database == "postgresql" else None
        bench = setup(Path(tmp), sandbox.url, amqp_url, database_url)
        onboard(bench, sandbox, enabled=False)
        with Children(bench) as children:
            children.start("serve", "serve")
            children.start("worker", "worker")
            wait_ready(children, bench.workdir, bench.config.worker.processes)
            cpu_before, own_before, machine_before = children.cpu_seconds(), own_cpu_seconds(), machine_cpu_seconds()
            started = time.perf_counter()
            enable_all(bench.engine)
            done, moved = (0, -1), time.monotonic()
            while not (done == (expected, 0) and outbox_pending(bench.engine) == 0):
                if time.monotonic() - moved > STALL_SECONDS:
                    raise TimeoutError(f"stalled at {done[0]} of {expected} documents")
                time.sleep(0.25)
                children.sample()
                if (now := stored(bench.engine)) != done:
                    done, moved = now, time.monotonic()
            seconds = time.perf_counter() - started
            cpu_after, own_after, machine_after = children.cpu_seconds(), own_cpu_seconds(), machine_cpu_seconds()
            usage = children.sample()
    cpu = {"sandbox": own_after - own_before, **{name: cpu_after[name] - cpu_before[name] for name in cpu_after}}
    cpu["other"] = machine_after - machine_before - sum(cpu.values())
    processes = {u.name: u.peak_rss_kib / 1024 for u in usage.values()}
    workers = [rss for name, rss in processes.items() if name.startswith("worker[")]
    return Result(expected, seconds, max(workers), processes["serve"], processes, cpu)


def sequential_docs_per_s(amqp_url: str, seed: int, database: str) -> float:
    """Poll and fetch one enterprise after the other, in this process's main thread."""
    sandbox = serve_sandbox("127.0.0.1", 0, seed=seed, enterprises=SEQUENTIAL_EBOXES, pdf_size=PDF_SIZE)
    with sandbox, tempfile.TemporaryDirectory(prefix="eboxd-bench-") as tmp, ExitStack() as stack:
        database_url = stack.enter_context(postgres_database()) if database == "postgresql" else None
        bench = setup(Path(tmp), sandbox.url, amqp_url, database_url)
        onboard(bench, sandbox)
        access = EboxAccess(bench.config, SecretBox.from_config(bench.config))
        store = create_store(bench.config, bench.engine)
        started = time.perf_counter()
        with bench.engine.begin() as tx:
            leases = claim_due_polls(tx, bench.config.poll)
        for lease in leases:
            run_token = start_poll(bench.engine, lease, bench.config.poll)
            assert run_token is not None
            poll_enterprise(bench.engine, access, bench.config, lease.enterprise_id, run_token)
            with reading(bench.engine) as conn:
                ids = conn.execute(sa.select(Message.id).where(Message.enterprise_id == lease.enterprise_id,
                                                               Message.fetch_state == "pending")).scalars().all()
            for message_id in ids:
                fetch_message(bench.engine, access, store, bench.config, message_id)
        seconds = time.perf_counter() - started
        access.close()
        docs, pending = stored(bench.engine)
        assert pending == 0
    return docs / seconds


def sandbox_alone_docs_per_s(seed: int) -> float:
    """100 kB downloads/s the sandbox serves to ``_loadgen.py`` (another process, 8 connections)."""
    sandbox = serve_sandbox("127.0.0.1", 0, seed=seed, enterprises=SEQUENTIAL_EBOXES, pdf_size=PDF_SIZE)
    with sandbox:
        pem = ebox.generate_identity("eboxd benchmark", sandbox.catalogue.enterprises[0].number,
                                     key_size=2048).certificate_pem()
        tokens = {}
        for enterprise in sandbox.catalogue.enterprises:
            client_id = sandbox.register_client(pem, enterprise.number)
            token = IssuedToken(f"loadgen-{client_id}", client_id, frozenset(DEFAULT_SCOPES),
                                sandbox.state.now() + dt.timedelta(hours=1))
            with sandbox.state.lock:
                sandbox.state.tokens[token.value] = token
            tokens[enterprise.number] = token.value
        targets = [
            {"path": f"{sandbox.registry_url(letter.provider_id)}/ebox/messages/{letter.message_id}/attachments/"
                     f"{attachment.attachment_id}/content?download=1", "token": tokens[letter.enterprise_number]}
            for letter in sandbox.catalogue.letters for attachment in letter.attachments
            if attachment.media_type == "application/pdf"]
        spec = json.dumps({"seconds": LOADGEN_SECONDS, "connections": 8, "targets": targets})
        out = subprocess.run([sys.executable, str(Path(__file__).with_name("_loadgen.py"))], input=spec,
                             capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    if result["errors"]:
        raise RuntimeError(f"load generator: {result['errors']} failed downloads")
    return float(result["requests_per_s"])


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the children on the way out
    configure_logging("warning", "console")  # the sequential peer runs here
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--counts", type=int, nargs=2, default=COUNTS, metavar=("SMALL", "LARGE"))
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                        help="postgresql: a fresh database on $EBOXD_TEST_DATABASE_URL_PG's server")
    args = parser.parse_args()
    counts = args.counts
    with rabbitmq() as broker, private_vhost(broker) as amqp_url:
        small = run(counts[0], amqp_url, seed=21, database=args.database)
        print(f"small: {small.docs} documents in {small.seconds:.1f} s; peak RSS (MiB) "
              + ", ".join(f"{name} {rss:.0f}" for name, rss in small.processes.items()), file=sys.stderr)
        large = run(counts[1], amqp_url, seed=22, database=args.database)
        print(f"large: {large.docs} documents in {large.seconds:.1f} s; peak RSS (MiB) "
              + ", ".join(f"{name} {rss:.0f}" for name, rss in large.processes.items()), file=sys.stderr)
        sequential = sequential_docs_per_s(amqp_url, seed=23, database=args.database)
    alone = sandbox_alone_docs_per_s(seed=24)
    for name, result in (("small", small), ("large", large)):
        print(f"{name}: {result.docs} documents of ~{PDF_SIZE // 1024} kB PDFs in {result.seconds:.1f} s: "
              f"{result.docs_per_s:.0f} docs/s; peak RSS: worker process {result.peak_rss_mib:.0f} MiB, "
              f"serve {result.serve_rss_mib:.0f} MiB; CPU seconds: "
              + ", ".join(f"{name} {value:.1f}" for name, value in result.cpu.items())
              + f" (of {CORES * result.seconds:.0f} on {CORES} cores; 'other': RabbitMQ and whatever else ran)")
    print(f"sequential (one thread, no broker): {sequential:.0f} docs/s; sandbox alone: {alone:.0f} downloads/s")
    print(f"docs={large.docs} docs_per_s={large.docs_per_s:.0f} peak_rss_mib={large.peak_rss_mib:.0f} "
          f"peak_rss_mib_small={small.peak_rss_mib:.0f} peak_rss_mib_large={large.peak_rss_mib:.0f} "
          f"docs_small={small.docs} docs_per_s_small={small.docs_per_s:.0f} "
          f"serve_rss_mib_small={small.serve_rss_mib:.0f} serve_rss_mib_large={large.serve_rss_mib:.0f} "
          f"sequential_docs_per_s={sequential:.0f} ratio={large.docs_per_s / sequential:.1f} "
          f"sandbox_alone_docs_per_s={alone:.0f}")


if __name__ == "__main__":
    main()
