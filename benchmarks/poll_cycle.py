"""One full poll cycle of 10,000 enterprises with nothing new, through the real daemon.

Set-up: the e-Box sandbox in this process with 10,000 e-Boxes holding one letter each (its most
recent one, 6 days old, at FPS Finance: seeding all twelve letters of 10,000 e-Boxes takes over a
minute and 600 MB); the enterprises onboarded in bulk sharing one RSA key (see ``_fleet``);
``eboxd serve`` and ``eboxd worker -Q poll`` (default configuration: 2 processes × 8 threads,
claims of 500 per 1 s round) as child processes, on SQLite and a private vhost of the test RabbitMQ.

A first cycle stores every letter (10,000 new messages; their fetch tasks wait in the queue, no
worker consumes ``fetch``). The measured cycle then starts when every enterprise is made due at once
(``request_poll``, as ``eboxd poll --all`` does) and ends when the last poll is recorded in the
database. It includes everything the daemon does for a poll: serve's claims under a lease, the
outbox relay publishing the poll tasks, dramatiq delivering them, and per enterprise: the lease
swap, reading the enterprise, its watermarks and its credential (decrypt and load the key), an
access token (the sandbox issues 20-second tokens and the cycle starts after they went stale, so
every enterprise gets a new token, as in production where tokens live 10 minutes and polls are
15 minutes apart), a listing per active provider (NSSO: empty; FPS Finance: the one letter, in the
refresh window), comparing it with the stored message, and releasing the lease. Per worker process,
the provider list (cached five minutes) was fetched in the first cycle: the measured one asks for
it again only if that was longer ago.

Peers, measured in the same run: ``naive`` is a sequential loop with one client per enterprise (its
own HTTP client and connection, a token, the provider list, the listings; no database writes at
all), timed on 300 enterprises and extrapolated; most of its time goes into making an HTTP client
(a TLS context) and a connection per enterprise. ``sandbox_alone`` is the listing requests/s the
sandbox serves to a load generator in another process with keep-alive connections (no eboxd), its
ceiling here. The sandbox, serve, the workers and RabbitMQ share this machine's cores: the CPU
seconds each used during the cycle show where the time goes (``sandbox`` is this process, with its
bookkeeping; ``other`` is RabbitMQ and anything else that ran, e.g. another test run on a shared
machine). Last line: ``enterprises=… cycle_s=… requests_per_s=… …``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._fleet import (
    Bench,
    Children,
    machine_cpu_seconds,
    onboard,
    outbox_pending,
    own_cpu_seconds,
    reading,
    setup,
    wait_for,
)
from benchmarks._services import private_vhost, rabbitmq
from daemon import ebox
from daemon.db.models import Enterprise, Message, PollState, utcnow
from daemon.enterprises import open_client
from daemon.logging import configure_logging
from daemon.poll import request_poll
from daemon.sandbox.ebox import serve_sandbox
from daemon.sandbox.ebox.server import EboxSandbox
from daemon.sandbox.ebox.state import DEFAULT_SCOPES, IssuedToken
from daemon.secrets import SecretBox

ENTERPRISES = 10_000
TOKEN_LIFETIME = 20  # seconds; eboxd refreshes a token once half of it is gone
NAIVE_SAMPLE = 300
LOADGEN_SECONDS = 5.0
STALL_SECONDS = 60.0
CORES = os.cpu_count() or 1


def polled_since(engine: sa.Engine, since: dt.datetime) -> tuple[int, int]:
    """(successful, failed) polls finished since ``since``."""
    with reading(engine) as conn:
        done = conn.execute(sa.select(
            sa.func.count().filter(PollState.last_success_at >= since),
            sa.func.count().filter(PollState.last_attempt_at >= since, PollState.lease_token.is_(None),
                                   PollState.consecutive_failures > 0),
        )).one()
    return int(done[0]), int(done[1])


def run_cycle(bench: Bench, children: Children, total: int) -> dict[str, float]:
    """Make every enterprise due now and wait until each has been polled (or nothing moved for a
    minute: a poll that died on an unexpected error keeps its lease for 15 minutes); what it took."""
    cpu_before, own_before, machine_before = children.cpu_seconds(), own_cpu_seconds(), machine_cpu_seconds()
    started = utcnow()
    request_poll(bench.engine)
    done, moved = (0, 0), time.monotonic()
    while sum(done) < total and time.monotonic() - moved < STALL_SECONDS:
        time.sleep(0.5)
        children.sample()  # also checks that serve and the worker are alive
        if (now := polled_since(bench.engine, started)) != done:
            done, moved = now, time.monotonic()
    with reading(bench.engine) as conn:  # the cycle ends with the last poll recorded
        last = conn.execute(sa.select(sa.func.max(PollState.last_success_at))).scalar_one() or utcnow()
    cpu_after, own_after, machine_after = children.cpu_seconds(), own_cpu_seconds(), machine_cpu_seconds()
    ok, failed = polled_since(bench.engine, started)
    cpu = {"sandbox_cpu_s": own_after - own_before,
           **{f"{name}_cpu_s": cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}}
    cpu["other_cpu_s"] = machine_after - machine_before - sum(cpu.values())
    return {"cycle_s": (last - started).total_seconds(), "ok": ok, "failed": failed,
            "unfinished": total - ok - failed, **cpu}


def naive_seconds_per_enterprise(bench: Bench, sample: int) -> float:
    """Sequential, one client (connection, token provider) per enterprise, no database writes."""
    secrets = SecretBox.from_config(bench.config)
    query = ebox.MessageQuery(received_after=utcnow().date() - dt.timedelta(days=bench.config.poll.refresh_days))
    with Session(bench.engine) as session:
        enterprises = session.scalars(sa.select(Enterprise).order_by(Enterprise.id).limit(sample)).all()
        started = time.perf_counter()
        for enterprise in enterprises:
            with open_client(session, bench.config, secrets, enterprise) as client:
                for provider in ebox.select_providers(client.list_providers()).usable:
                    list(client.for_provider(provider).iter_messages(query, page_size=bench.config.poll.page_size))
        return (time.perf_counter() - started) / len(enterprises)


def sandbox_alone_requests_per_s(sandbox: EboxSandbox, seconds: float) -> float:
    """Listing requests/s served to ``_loadgen.py`` (another process, 8 keep-alive connections)."""
    received_after = (dt.date.today() - dt.timedelta(days=14)).isoformat()
    base = sandbox.registry_url("fedfin") + "/ebox/messages"
    targets = []
    with sandbox.state.lock:
        for index, client in enumerate(list(sandbox.state.clients.values())[:1000]):
            token = IssuedToken(f"loadgen-{index}", client.client_id, frozenset(DEFAULT_SCOPES),
                                sandbox.state.now() + dt.timedelta(hours=1))
            sandbox.state.tokens[token.value] = token
            targets.append({"path": f"{base}?receivedAfter={received_after}&page=1&pageSize=100",
                            "token": token.value})
    spec = json.dumps({"seconds": seconds, "connections": 8, "targets": targets})
    out = subprocess.run([sys.executable, str(Path(__file__).with_name("_loadgen.py"))], input=spec,
                         capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout)["requests_per_s"])


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the children on the way out
    configure_logging("warning", "console")  # the naive loop runs here: no debug lines on the terminal
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--enterprises", type=int, default=ENTERPRISES)
    total = parser.parse_args().enterprises
    started = time.perf_counter()
    sandbox = serve_sandbox("127.0.0.1", 0, seed=11, enterprises=total, letters=1, token_lifetime=TOKEN_LIFETIME)
    print(f"sandbox: {total} e-Boxes seeded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    with (sandbox, rabbitmq() as broker, private_vhost(broker) as amqp_url,
          tempfile.TemporaryDirectory(prefix="eboxd-bench-") as tmp):
        bench = setup(Path(tmp), sandbox.url, amqp_url)
        onboard(bench, sandbox)
        with Children(bench) as children:
            children.start("serve", "serve")
            children.start("worker", "worker", "-Q", "poll")
            first = run_cycle(bench, children, total)
            print(f"first cycle (stores {total} new messages): {first['cycle_s']:.1f} s", file=sys.stderr)
            with reading(bench.engine) as conn:
                stored = conn.execute(sa.select(sa.func.count()).select_from(Message)).scalar_one()
            wait_for(lambda: outbox_pending(bench.engine) == 0, timeout=600, what="the relay to drain")
            time.sleep(TOKEN_LIFETIME / 2 + 1)  # every token of the first cycle is due for renewal
            requests_before = sandbox.state.request_counter
            cycle = run_cycle(bench, children, total)
            requests = sandbox.state.request_counter - requests_before
        with reading(bench.engine) as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(Message)).scalar_one() == stored, "new messages"
        naive = naive_seconds_per_enterprise(bench, NAIVE_SAMPLE) * total
        alone = sandbox_alone_requests_per_s(sandbox, LOADGEN_SECONDS)
    cycle_s = cycle["cycle_s"]
    print(f"cycle: {cycle['ok']} polls ok, {cycle['failed']} failed, {cycle['unfinished']} unfinished; "
          f"{requests} sandbox requests "
          f"({requests / total:.2f} per enterprise)")
    print("CPU seconds during the cycle: " + ", ".join(
        f"{name.removesuffix('_cpu_s')} {value:.1f}" for name, value in cycle.items() if name.endswith("_cpu_s"))
        + f" (of {CORES * cycle_s:.0f} on {CORES} cores; 'other': RabbitMQ and whatever else ran)")
    print(f"naive: {NAIVE_SAMPLE} enterprises sequentially, one client each, extrapolated to {total}: {naive:.0f} s")
    print(f"sandbox alone: {alone:.0f} listing requests/s (load generator in another process)")
    print(f"enterprises={total} cycle_s={cycle_s:.1f} requests_per_s={requests / cycle_s:.0f} "
          f"failed={cycle['failed'] + cycle['unfinished']} first_cycle_s={first['cycle_s']:.1f} "
          f"naive_cycle_s={naive:.0f} ratio={naive / cycle_s:.1f} sandbox_alone_requests_per_s={alone:.0f}")


if __name__ == "__main__":
    main()
