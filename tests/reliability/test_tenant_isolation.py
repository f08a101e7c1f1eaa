"""Enterprises never cross: five enterprises polled by one `eboxd serve` and one `eboxd worker`; A and B
export to ZIP (each its own drop folder), to Exact (one Exact user and app shared by both — the
accountant's case — each its own division) and to Yuki (one access key seeing both administrations,
each its own). Every document of A ends up only in A's folder, division and administration, B's
only in B's, and the other three enterprises' nowhere. CLI listings scoped with --enterprise show
only that enterprise's rows, and a document id of A asked for through B's scope is refused."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from eboxd_exact.exporter import marker_of
from eboxd_exact.oauth import OAuthApp, authorize_url
from eboxd_exact.sandbox import ExactSandboxServer, serve_exact_sandbox
from eboxd_yuki.sandbox import YukiSandboxServer, serve_yuki_sandbox
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.db.models import Document, Enterprise, Export, ExporterConfig, Message
from daemon.enterprises import display
from daemon.exports import export_document_of
from daemon.poll import request_poll
from tests.amqp_helpers import private_amqp_url
from tests.integration.conftest import Integration, start_integration, wait_for_pipeline
from tests.integration.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]

DIVISIONS = {"A": 124132, "B": 124133}  # the Exact sandbox's two divisions
ADMINISTRATIONS = {"A": "Acme NV", "B": "Beta BV"}  # the Yuki sandbox key's two administrations
EXPORTERS = ("zip", "exact", "yuki")


@pytest.fixture
def amqp_url() -> Iterator[str]:
    yield from private_amqp_url()


@pytest.fixture
def exact() -> Iterator[ExactSandboxServer]:
    with serve_exact_sandbox("127.0.0.1", 0, seed=3) as server:
        yield server


@pytest.fixture
def yuki() -> Iterator[YukiSandboxServer]:
    with serve_yuki_sandbox("127.0.0.1", 0, seed=3) as server:
        yield server


@pytest.fixture
def integration(engine: Engine, database_url: str, amqp_url: str, tmp_path: Path) -> Iterator[Integration]:
    yield from start_integration(engine, database_url, amqp_url, tmp_path)


def _cli(it: Integration, tmp: Path, *args: str, env: dict[str, str] | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "daemon", *args], capture_output=True, text=True, timeout=180,
                          check=False, env={**it.processes.env, "EBOXD_DAEMON__DATA_DIR": str(tmp / "cli"),
                                            "COLUMNS": "250", **(env or {})})
    if check:
        assert done.returncode == 0, f"eboxd {' '.join(args)} → {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def _connect(it: Integration, tmp: Path, exact: ExactSandboxServer, yuki: YukiSandboxServer,
             tenants: dict[str, str]) -> None:
    """ZIP, Exact and Yuki for A and B, through the CLI as an operator would."""
    for tenant, number in tenants.items():
        _cli(it, tmp, "exporter", "enable", "zip", "--enterprise", number, "--dir", str(tmp / f"drop-{tenant}"),
             "--set", "layout=files")
    app = exact.state.app
    consent = httpx.get(authorize_url(OAuthApp(exact.url, app.client_id, app.client_secret, app.redirect_uris[0]),
                                      "state-a"))
    code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
    _cli(it, tmp, "exact", "connect", "--enterprise", tenants["A"], "--client-id", app.client_id, "--url", exact.url,
         "--redirect-uri", app.redirect_uris[0], "--code", code, "--division", str(DIVISIONS["A"]),
         env={"EBOXD_EXACT_CLIENT_SECRET": app.client_secret})
    _cli(it, tmp, "exact", "connect", "--enterprise", tenants["B"], "--same-as", tenants["A"], "--division",
         str(DIVISIONS["B"]))
    key = next(iter(yuki.state.keys))
    for tenant, number in tenants.items():
        _cli(it, tmp, "yuki", "connect", "--enterprise", number, "--url", yuki.url, "--administration",
             ADMINISTRATIONS[tenant], "--timeout", "10", env={"EBOXD_YUKI_ACCESS_KEY": key})


def _documents_by_enterprise(it: Integration) -> dict[str, dict[int, str]]:
    """Enterprise number → its stored documents (id → SHA-256)."""
    with it.engine.connect() as conn:
        rows = conn.execute(sa.select(Enterprise.number, Document.id, Document.sha256).join(
            Message, Message.id == Document.message_id).join(Enterprise, Enterprise.id == Message.enterprise_id)).all()
    found: dict[str, dict[int, str]] = defaultdict(dict)
    for number, document_id, sha in rows:
        found[number][document_id] = sha
    return found


def _completed(it: Integration) -> dict[str, int]:
    with it.engine.connect() as conn:
        return dict(conn.execute(sa.select(Export.exporter, sa.func.count()).where(Export.status == "completed")
                                 .group_by(Export.exporter)).all())


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_documents_and_exports_of_two_enterprises_never_cross(integration: Integration, exact: ExactSandboxServer,
                                                               yuki: YukiSandboxServer, tmp_path: Path) -> None:
    it = integration
    tenants = {"A": it.numbers[0], "B": it.numbers[1]}
    others = set(it.numbers) - set(tenants.values())
    _connect(it, tmp_path, exact, yuki, tenants)
    it.processes.serve()
    it.processes.worker(processes=1, threads=4)
    request_poll(it.engine)
    wait_for_pipeline(it, timeout=180, poll_every=3)
    docs = _documents_by_enterprise(it)
    exported = sum(len(docs[number]) for number in tenants.values())
    assert all(docs[number] for number in it.numbers), "an enterprise without documents proves nothing"
    wait_until(lambda: all(_completed(it).get(name) == exported for name in EXPORTERS), timeout=240,
               what="every export of A and B", processes=it.processes, describe=lambda: str(_completed(it)))
    codes = it.processes.stop()
    assert set(codes.values()) == {0}, f"{codes}\n{it.processes.logs()}"

    # The ledger: exports only for A's and B's documents, each to its own enterprise's targets.
    with Session(it.engine) as session:
        targets = {(number, exporter): target for number, exporter, target in session.execute(
            sa.select(Enterprise.number, ExporterConfig.exporter, ExporterConfig.target).join(Enterprise))}
        ledger = session.execute(sa.select(Export.document_id, Export.exporter, Export.target)).all()
        administrations = {number: session.scalars(sa.select(ExporterConfig.settings).join(Enterprise).where(
            Enterprise.number == number, ExporterConfig.exporter == "yuki")).one()["administration"]
            for number in tenants.values()}
        markers = {number: {marker_of(export_document_of(session, it.store, document_id))  # type: ignore[arg-type]
                            for document_id in docs[number]} for number in tenants.values()}
    owner = {document_id: number for number, documents in docs.items() for document_id in documents}
    assert len(ledger) == exported * len(EXPORTERS)
    for document_id, exporter, target in ledger:
        assert owner[document_id] in tenants.values()
        assert target == targets[(owner[document_id], exporter)], (document_id, exporter, target)

    for tenant, number in tenants.items():
        mine = set(docs[number].values())
        # ZIP: A's folder holds A's documents, under A's number, and nothing else.
        files = [path for path in (tmp_path / f"drop-{tenant}").rglob("*") if path.is_file()]
        assert {path.relative_to(tmp_path / f"drop-{tenant}").parts[0] for path in files} == {number}
        assert sorted(hashlib.sha256(path.read_bytes()).hexdigest() for path in files) == sorted(mine)
        # Exact: A's division holds A's documents (by their markers) and their attachments.
        with exact.state._lock:
            division = [d for d in exact.state.documents if d["Division"] == DIVISIONS[tenant]]
            attached = [a for a in exact.state.attachments if a["Division"] == DIVISIONS[tenant]]
        assert sorted(d["Subject"].rsplit(" ", 1)[-1].rstrip("]") for d in division) == sorted(markers[number])
        assert sorted(hashlib.sha256(a["_data"]).hexdigest() for a in attached) == sorted(mine)
        # Yuki: A's administration holds A's documents.
        uploads = yuki.state.uploads_of(administrations[number])
        assert sorted(upload.sha256 for upload in uploads) == sorted(mine)
    # The other enterprises' documents went nowhere: the targets hold A's and B's, no more.
    assert len(exact.state.documents) == len(exact.state.attachments) == len(yuki.state.uploads) == exported
    assert sorted(path.name for path in tmp_path.glob("drop-*/*")) == sorted(tenants.values())
    assert len(others) == 3

    _check_cli_scopes(it, tmp_path, tenants, docs)


def _check_cli_scopes(it: Integration, tmp: Path, tenants: dict[str, str], docs: dict[str, dict[int, str]]) -> None:
    a, b = tenants["A"], tenants["B"]

    def shows_only(output: str, number: str) -> None:
        assert number in output, output
        for other in set(it.numbers) - {number}:
            assert other not in output, f"{other} in the listing of {number}:\n{output}"

    shows_only(_cli(it, tmp, "exports", "list", "--enterprise", a, "--limit", "1000").stdout, a)
    shows_only(_cli(it, tmp, "exporter", "list", "--enterprise", a).stdout, a)
    listing = _cli(it, tmp, "messages", "list", "--enterprise", a, "--limit", "0").stdout
    rows = [[cell.strip() for cell in line.split("│")] for line in listing.splitlines()]
    rows = [cells for cells in rows if len(cells) > 3 and cells[1].isdigit()]
    with it.engine.connect() as conn:
        messages_of_a = set(conn.scalars(sa.select(Message.id).join(Enterprise).where(Enterprise.number == a)))
    assert {int(cells[1]) for cells in rows} == messages_of_a
    assert {cells[2] for cells in rows} == {display(a)}

    # A bundle through B's scope: B's documents only; A's document id asked for through it is refused.
    bundle = tmp / "bundle-b.zip"
    _cli(it, tmp, "export", "zip", "--enterprise", b, "-o", str(bundle), "--no-progress", "--max-mb", "0")
    with zipfile.ZipFile(bundle) as zf:
        [index] = [name for name in zf.namelist() if name.endswith("/data/index.json")]
        assert sorted(row["doc_sha256"] for row in json.loads(zf.read(index))["documents"]) == \
            sorted(docs[b].values())
    of_a = min(docs[a])
    refused = _cli(it, tmp, "export", "zip", "--enterprise", b, "--ids", str(of_a), "-o", str(tmp / "x.zip"),
                   "--no-progress", check=False)
    assert refused.returncode != 0, refused.stdout
    assert str(of_a) in refused.stderr
    assert "not a document of" in refused.stderr, refused.stderr
    assert not (tmp / "x.zip").exists()
    mixed = _cli(it, tmp, "export", "zip", "--enterprise", b, "--ids", str(min(docs[b])), "--ids", str(of_a),
                 "-o", str(tmp / "y.zip"), "--no-progress", check=False)
    assert mixed.returncode != 0
    assert not (tmp / "y.zip").exists()
