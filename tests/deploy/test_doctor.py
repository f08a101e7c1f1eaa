"""`eboxd doctor` on a node onboarded against the e-Box sandbox: all rows ok when it is healthy, and
the right row failing (with the right reason and exit code) when the broker is down, a certificate
is bad, a token is refused, the configuration or the schema is wrong."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.orm import Session

from daemon import ebox
from daemon.db import create_db_engine
from daemon.db.models import Credential, Enterprise
from daemon.enterprises import load_credential
from daemon.sandbox.ebox import serve_sandbox
from daemon.sandbox.ebox.server import EboxSandbox
from daemon.secrets import SecretBox
from tests.service.test_serve import free_port

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@dataclass
class Node:
    env: dict[str, str]
    number: str
    name: str
    database_url: str
    data_dir: Path

    def eboxd(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "daemon", *args], capture_output=True, text=True, timeout=120,
                              env={**self.env, **env}, check=False)

    def doctor(self, **env: str) -> tuple[int, dict[tuple[str, str], dict[str, str]]]:
        result = self.eboxd("doctor", "--format", "json", **env)
        assert result.stdout, result.stderr
        report = json.loads(result.stdout)
        assert report["ok"] == (result.returncode == 0)
        return result.returncode, {(row["check"], row["target"].split()[0]): row for row in report["checks"]}

    @property
    def shown(self) -> str:
        return f"{self.number[:4]}.{self.number[4:7]}.{self.number[7:]}"

    def update_credential(self, **values: object) -> None:
        engine = create_db_engine(self.database_url)
        with engine.begin() as tx:
            enterprise_id = tx.execute(sa.select(Enterprise.id).where(Enterprise.number == self.number)).scalar_one()
            tx.execute(sa.update(Credential).where(Credential.enterprise_id == enterprise_id).values(**values))
        engine.dispose()

    def private_key(self) -> ebox.Credential:
        engine = create_db_engine(self.database_url)
        with Session(engine) as session:
            enterprise = session.scalars(sa.select(Enterprise).where(Enterprise.number == self.number)).one()
            credential = load_credential(session, SecretBox.from_file(self.data_dir / "master.key"), enterprise)
        engine.dispose()
        return credential


@pytest.fixture
def sandbox() -> Iterator[EboxSandbox]:
    server = serve_sandbox("127.0.0.1", 0, seed=7, enterprises=2)
    yield server
    server.shutdown()


@pytest.fixture
def node(database_url: str, sandbox: EboxSandbox, amqp_url: str, tmp_path: Path) -> Node:
    """A node with one enterprise onboarded as an operator does it: add, certificate, ChaMan, connect."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EBOXD_") or k.startswith("EBOXD_TEST")}
    data_dir = tmp_path / "state"
    env = {**clean, "PYTHONPATH": str(REPO), "EBOXD_DATABASE__URL": database_url, "EBOXD_BROKER__URL": amqp_url,
           "EBOXD_DAEMON__DATA_DIR": str(data_dir), "EBOXD_EBOX__SANDBOX_URL": sandbox.url,
           "EBOXD_EBOX__KEY_SIZE": "2048", "EBOXD_SERVICE__HTTP_PORT": str(free_port()),
           "EBOXD_LOGGING__FORMAT": "json"}
    seeded = sandbox.describe()["enterprises"][0]
    node = Node(env, seeded["enterpriseNumber"], seeded["name"], database_url, data_dir)
    certificate = tmp_path / "cert.pem"
    for args in (("init",), ("enterprise", "add", node.number, "--name", node.name),
                 ("enterprise", "certificate", node.number, "-o", str(certificate))):
        result = node.eboxd(*args)
        assert result.returncode == 0, f"eboxd {' '.join(args)}: {result.stderr}"
    client_id = sandbox.register_client(certificate.read_bytes(), node.number)
    result = node.eboxd("enterprise", "connect", node.number, "--client-id", client_id)
    assert result.returncode == 0, result.stderr
    return node


HEALTHY = {
    ("config", "defaults"): "ok", ("database", None): "ok", ("broker", None): "ok",
    ("document store", None): "ok", ("master key", None): "ok", ("coda scanner", "-"): "ok",
    ("certificate", "ENTERPRISE"): "ok",
    ("token", "ENTERPRISE"): "ok", ("exporters", "-"): "skip", ("daemon", None): "warn",
}


def expect(rows: dict[tuple[str, str], dict[str, str]], node: Node, overrides: dict[str, str]) -> None:
    for (check, target), status in HEALTHY.items():
        matches = [row for (c, t), row in rows.items()
                   if c == check and (target is None or t == (node.shown if target == "ENTERPRISE" else target))]
        assert len(matches) == 1, f"one {check} row expected in {list(rows)}"
        assert matches[0]["status"] == overrides.get(check, status), matches[0]
    assert not [row for row in rows.values() if row["status"] == "fail" and row["check"] not in overrides]


def only(rows: dict[tuple[str, str], dict[str, str]], check: str) -> dict[str, str]:
    (row,) = [row for (name, _), row in rows.items() if name == check]
    return row


def test_doctor_on_a_healthy_node(node: Node) -> None:
    code, rows = node.doctor()
    expect(rows, node, {})
    assert code == 0
    assert "migrations at head" in only(rows, "database")["detail"]
    assert "days left" in rows[("certificate", node.shown)]["detail"]
    assert "obtained from sandbox" in rows[("token", node.shown)]["detail"]
    assert "not running" in only(rows, "daemon")["detail"]

    table = node.eboxd("doctor")  # what an operator sees
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert any("certificate" in line and node.shown in line and " ok " in line for line in lines), table.stdout
    assert any(line.startswith("│ token") and " ok " in line for line in lines), table.stdout
    assert "0 failures" in table.stdout


def test_doctor_without_the_coda_scanner(node: Node) -> None:
    code, rows = node.doctor(EBOXD_CODA_PURE_PYTHON="1")
    expect(rows, node, {"coda scanner": "warn"})
    assert code == 0  # a warning: CODA files are still read
    assert "EBOXD_CODA_PURE_PYTHON" in only(rows, "coda scanner")["detail"]


def test_doctor_with_the_broker_down(node: Node) -> None:
    code, rows = node.doctor(EBOXD_BROKER__URL=f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    expect(rows, node, {"broker": "fail"})
    assert code == 1
    broker = only(rows, "broker")
    assert broker["detail"].startswith("unreachable:")
    assert "Connection refused" in broker["detail"]
    assert "guest:guest" not in broker["target"]  # the password is not printed

    table = node.eboxd("doctor", EBOXD_BROKER__URL=f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    assert table.returncode == 1
    assert any(line.startswith("│ broker") and " fail " in line for line in table.stdout.splitlines()), table.stdout


def self_signed(key: ebox.Credential, node: Node, *, days: int, start: dt.datetime) -> tuple[str, dt.datetime]:
    certificate = ebox.create_self_signed_certificate(
        key.private_key, ebox.build_subject(node.name, node.number), valid_days=days, now=start)
    return certificate.public_bytes(Encoding.PEM).decode(), certificate.not_valid_after_utc


def test_doctor_with_an_expired_certificate(node: Node) -> None:
    pem, not_after = self_signed(node.private_key(), node, days=1,
                                 start=dt.datetime.now(dt.UTC) - dt.timedelta(days=10))
    node.update_credential(certificate_pem=pem, certificate_not_after=not_after)
    code, rows = node.doctor()
    expect(rows, node, {"certificate": "fail"})
    assert code == 1
    detail = rows[("certificate", node.shown)]["detail"]
    assert detail.startswith(f"expired on {not_after:%Y-%m-%d} (9 days ago)"), detail
    assert f"eboxd enterprise certificate {node.number} --renew" in detail


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("breakage", "check", "status", "words", "code"), [
    ("expiring in 10 days", "certificate", "warn", "expires in 9 days", 0),
    ("another key's certificate", "certificate", "fail", "issued for another key than the stored one", 1),
    ("garbage instead of a certificate", "certificate", "fail", "unreadable: cannot load the certificate", 1),
    ("no certificate", "certificate", "fail", "no certificate: run `eboxd enterprise certificate", 1),
    ("a client ID the e-Box does not know", "token", "fail", "does not know this client ID", 1),
])
def test_doctor_names_what_is_wrong_with_a_credential(node: Node, breakage: str, check: str, status: str,
                                                      words: str, code: int) -> None:
    now = dt.datetime.now(dt.UTC)
    if breakage == "expiring in 10 days":
        pem, not_after = self_signed(node.private_key(), node, days=10, start=now)
        node.update_credential(certificate_pem=pem, certificate_not_after=not_after)
    elif breakage == "another key's certificate":
        other = ebox.Credential("x", ebox.generate_private_key(2048))
        pem, not_after = self_signed(other, node, days=365, start=now)
        node.update_credential(certificate_pem=pem, certificate_not_after=not_after)
    elif breakage == "garbage instead of a certificate":
        node.update_credential(certificate_pem="-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    elif breakage == "no certificate":
        node.update_credential(certificate_pem=None, certificate_not_after=None)
    else:
        node.update_credential(client_id="self_service_chaman_000000_unknown")
    returncode, rows = node.doctor()
    expect(rows, node, {check: status})
    assert returncode == code
    assert words in rows[(check, node.shown)]["detail"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_doctor_with_a_bad_configuration_or_an_old_schema(node: Node, tmp_path: Path) -> None:
    code, rows = node.doctor(EBOXD_SERVICE__HTTP_PORT="eighty")
    assert code == 1
    assert rows[("config", "-")]["status"] == "fail"
    assert "EBOXD_SERVICE__HTTP_PORT" in rows[("config", "-")]["detail"]
    assert {row["status"] for (check, _), row in rows.items()
            if check not in ("config", "coda scanner")} == {"skip"}  # the scanner needs no configuration

    code, rows = node.doctor(EBOXD_DATABASE__URL=f"sqlite:///{tmp_path / 'empty.db'}")
    assert code == 1
    database = only(rows, "database")
    assert database["status"] == "fail"
    assert "run `eboxd db upgrade`" in database["detail"]
    assert rows[("credentials", "-")]["status"] == "skip"

    code, rows = node.doctor(EBOXD_DAEMON__DATA_DIR=str(tmp_path / "missing"))
    assert code == 1
    store = only(rows, "document store")
    assert store["status"] == "fail"
    assert store["detail"].endswith("missing does not exist: run `eboxd init`")
