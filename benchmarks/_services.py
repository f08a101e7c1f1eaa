"""Benchmarks' access to the test services: RabbitMQ ($EBOXD_TEST_AMQP_URL, else the running test
node, else one started for the benchmark and stopped after it) with a private vhost per run, and a
fresh PostgreSQL database on $EBOXD_TEST_DATABASE_URL_PG's server."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
RABBITMQ = REPO / "scripts" / "services" / "rabbitmq.sh"
RABBITMQCTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")


@contextmanager
def rabbitmq() -> Iterator[str]:
    if url := os.environ.get("EBOXD_TEST_AMQP_URL"):  # inside `make test`'s environment
        yield url
        return
    running = subprocess.run([str(RABBITMQ), "status"], check=False, capture_output=True, text=True)
    if running.returncode == 0:
        yield running.stdout.strip() or os.environ["EBOXD_TEST_AMQP_URL"]
        return
    started = subprocess.run([str(RABBITMQ), "start"], capture_output=True, text=True, check=True)
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run([str(RABBITMQ), "stop"], capture_output=True, check=False)


def _node_env(url: str) -> Path | None:
    """The env.sh of the scripts/services node listening on ``url``'s port, if that is where it points."""
    base = Path(os.environ.get("EBOXD_SERVICES_DIR") or REPO / ".services")
    env_sh = base / "rabbitmq" / "env.sh"
    port = urlsplit(url).port or 5672
    if not RABBITMQCTL.exists() or not env_sh.exists() or f"RABBITMQ_NODE_PORT={port}\n" not in env_sh.read_text():
        return None
    return env_sh


def _ctl(env_sh: Path, *args: str) -> None:
    subprocess.run(["bash", "-c", '. "$0" && exec "$1" -q "${@:2}"', str(env_sh), str(RABBITMQCTL), *args],
                   check=True, capture_output=True, text=True)


@contextmanager
def private_vhost(url: str) -> Iterator[str]:
    """``url`` on a fresh vhost, deleted afterwards with everything in it.

    eboxd's dramatiq queues have fixed names (``poll``, ``fetch``, …): on a node shared with a test
    run, workers of both would take each other's messages. Without access to the node's
    ``rabbitmqctl`` (an external broker), the URL is used as it is.
    """
    env_sh = _node_env(url)
    if env_sh is None:
        print(f"note: no rabbitmqctl for {url}: using its default vhost", file=sys.stderr)
        yield url
        return
    name = f"eboxd-bench-{uuid.uuid4().hex[:8]}"
    _ctl(env_sh, "add_vhost", name)
    try:
        user = urlsplit(url).username or "guest"
        _ctl(env_sh, "set_permissions", "-p", name, user, ".*", ".*", ".*")
        yield urlunsplit(urlsplit(url)._replace(path="/" + quote(name, safe="")))
    finally:
        _ctl(env_sh, "delete_vhost", name)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty database on $EBOXD_TEST_DATABASE_URL_PG's server, dropped afterwards."""
    import sqlalchemy as sa  # noqa: PLC0415 - only this helper needs it

    server = sa.make_url(os.environ["EBOXD_TEST_DATABASE_URL_PG"])
    name = f"eboxd_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
