"""What the pipeline benchmarks share: an eboxd in a temporary directory (SQLite, a private RabbitMQ
vhost) against an in-process sandbox, enterprises onboarded in bulk, ``eboxd serve`` and
``eboxd worker`` as child processes, and the CPU time and peak memory of every process.

Onboarding shortcut: every enterprise gets the same RSA key and certificate (a 2048-bit key takes
~50-100 ms to generate: 10,000 of them would take a quarter of an hour). The sandbox registers that
certificate once per enterprise under the enterprise's own client ID, and each enterprise's row holds
its own encryption of the key (the ciphertext is bound to the enterprise number). The rows are
inserted directly, not through ``eboxd enterprise connect`` (one token and ``GET /ebox`` each). From
there on eboxd does what it does with distinct keys: decrypt and load the key, sign an assertion,
get a token per enterprise.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from daemon import ebox
from daemon.config import Config, load_config
from daemon.db import create_db_engine, upgrade
from daemon.db.models import Credential, Enterprise, OutboxRow
from daemon.enterprises.keys import private_key_context
from daemon.sandbox.ebox.server import EboxSandbox
from daemon.secrets import SecretBox, create_key_file, master_key_path

__all__ = ["Bench", "Children", "ProcessUsage", "enable_all", "machine_cpu_seconds", "onboard", "outbox_pending",
           "own_cpu_seconds", "reading", "setup", "wait_for"]

EBOXD = Path(sys.executable).with_name("eboxd")
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Bench:
    workdir: Path
    config: Config
    engine: Engine
    env: dict[str, str]


def _toml(sections: Mapping[str, Mapping[str, Any]]) -> str:
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]  # JSON scalars are TOML
    return "\n".join(lines) + "\n"


def setup(workdir: Path, sandbox_url: str, amqp_url: str, database_url: str | None = None,
          **sections: Mapping[str, Any]) -> Bench:
    """A configuration file, a migrated database (SQLite under ``workdir`` unless ``database_url``)
    and a master key under ``workdir``; ``sections`` add or override configuration keys
    (``poll={"claim_batch": 1000}``)."""
    state = workdir / "state"
    settings: dict[str, dict[str, Any]] = {
        "daemon": {"data_dir": str(state)},
        "database": {"url": database_url or f"sqlite:///{state / 'eboxd.db'}"},
        "broker": {"url": amqp_url},
        "service": {"http_port": 0},
        "logging": {"format": "json"},
        "ebox": {"environment": "sandbox", "sandbox_url": sandbox_url},
    }
    for name, values in sections.items():
        settings.setdefault(name, {}).update(values)
    path = workdir / "eboxd.toml"
    path.write_text(_toml(settings), encoding="utf-8")
    config = load_config(path, environ={})
    create_key_file(master_key_path(config))
    engine = create_db_engine(config.database_url, busy_timeout_seconds=config.database.busy_timeout_seconds)
    upgrade(engine)
    env = {key: value for key, value in os.environ.items() if not key.startswith("EBOXD_")}
    env["EBOXD_CONFIG"] = str(path)
    return Bench(workdir, config, engine, env)


def onboard(bench: Bench, sandbox: EboxSandbox, *, enabled: bool = True) -> int:
    """Every enterprise of the sandbox's catalogue, connected, sharing one key (see the module docstring);
    disabled ones are not polled until :func:`enable_all`."""
    secrets = SecretBox.from_config(bench.config)
    seeded = sandbox.catalogue.enterprises
    identity = ebox.generate_identity("eboxd benchmark", seeded[0].number, key_size=2048, valid_days=30,
                                      environment_tag="sandbox")
    pkcs8, pem = ebox.private_key_to_pkcs8(identity.private_key), identity.certificate_pem()
    fingerprint = ebox.public_key_fingerprint(identity.private_key)
    now = dt.datetime.now(dt.UTC)
    with bench.engine.begin() as tx:
        tx.execute(sa.insert(Enterprise), [{"number": e.number, "name": e.name, "enabled": enabled, "created_at": now,
                                            "updated_at": now} for e in seeded])
        ids: dict[str, int] = dict(tx.execute(sa.select(Enterprise.number, Enterprise.id)).all())  # type: ignore[arg-type]
        rows = []
        for index, enterprise in enumerate(seeded):
            client_id = sandbox.register_client(pem, enterprise.number,
                                                client_id=f"self_service_chaman_{index:06d}_bench")
            context = private_key_context(Enterprise(number=enterprise.number), Credential(kind="ebox"))
            rows.append({"enterprise_id": ids[enterprise.number], "kind": "ebox", "environment": "sandbox",
                         "client_id": client_id, "certificate_pem": pem.decode(),
                         "certificate_not_after": identity.not_valid_after_utc,
                         "private_key_encrypted": secrets.encrypt(pkcs8, context=context),
                         "key_fingerprint": fingerprint, "created_at": now, "connected_at": now})
        tx.execute(sa.insert(Credential), rows)
    return len(seeded)


def enable_all(engine: Engine) -> None:
    """Enable every enterprise: serve's next round claims them all (a new one is due at once)."""
    with engine.begin() as tx:
        tx.execute(sa.update(Enterprise).values(enabled=True))


def reading(engine: Engine) -> Connection:
    """A connection for reads only: on SQLite it does not take the write lock the measured processes need."""
    return engine.connect().execution_options(sqlite_readonly=True)


def outbox_pending(engine: Engine) -> int:
    with reading(engine) as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(OutboxRow.sent_at.is_(None))).scalar_one())


def wait_for(condition: Callable[[], bool], *, timeout: float, interval: float = 0.25, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what or condition}")
        time.sleep(interval)


def machine_cpu_seconds() -> float:
    """CPU time all processes of this machine used since boot (/proc/stat): the part not used by the
    benchmark's own processes shows whether something else was competing for the cores."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def own_cpu_seconds() -> float:
    """CPU time of this process (the in-process sandbox, and a little bookkeeping)."""
    times = os.times()
    return times.user + times.system


@dataclass
class ProcessUsage:
    """What /proc says about one process: peak RSS (VmHWM) and CPU time, as last sampled."""

    name: str
    peak_rss_kib: int = 0
    cpu_seconds: float = 0.0


def _read_proc(pid: int) -> tuple[int, float] | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    hwm = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    fields = stat.rpartition(")")[2].split()
    return hwm, (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def _descendants(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += parents.get(pid, [])
    return found


@dataclass
class Children:
    """``eboxd`` child processes by name; :meth:`sample` records their process trees' usage."""

    bench: Bench
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    usage: dict[int, ProcessUsage] = field(default_factory=dict)

    def start(self, name: str, *args: str) -> None:
        log = (self.bench.workdir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen([str(EBOXD), *args], env=self.bench.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def sample(self) -> dict[int, ProcessUsage]:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"eboxd {name} exited with {proc.returncode}: see {self.bench.workdir / name}.log")
            for index, pid in enumerate(_descendants(proc.pid)):
                read = _read_proc(pid)
                if read is not None:
                    usage = self.usage.setdefault(pid, ProcessUsage(name if index == 0 else f"{name}[{pid}]"))
                    usage.peak_rss_kib, usage.cpu_seconds = max(usage.peak_rss_kib, read[0]), read[1]
        return self.usage

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time so far per child (its whole process tree), sampled now."""
        self.sample()
        totals: dict[str, float] = {}
        for usage in self.usage.values():
            name = usage.name.partition("[")[0]
            totals[name] = totals.get(name, 0.0) + usage.cpu_seconds
        return totals

    def stop(self, name: str | None = None, timeout: float = 60) -> None:
        for key in [name] if name else list(self.procs):
            proc = self.procs.pop(key)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()

    def __enter__(self) -> Children:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.stop()
        if kind is not None and kind is not SystemExit:  # the logs go with the temporary directory
            for log in sorted(self.bench.workdir.glob("*.log")):
                tail = log.read_text(errors="replace").splitlines()[-20:]
                print(f"--- last lines of {log.name}:", *tail, sep="\n", file=sys.stderr)
