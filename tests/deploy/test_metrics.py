"""Metrics: named by Prometheus conventions, documented, summed across worker processes, and the
certificate and token gauges/counters fed by the code paths that know."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import dramatiq
import httpx
import pytest
import sqlalchemy as sa
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon import __version__, ebox, metrics
from daemon.db.models import Credential, Enterprise, OutboxRow, utcnow
from daemon.service.gauges import refresh_credential_gauges
from tests.amqp_helpers import unique_name
from tests.service.test_serve import free_port, start

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
FORBIDDEN_LABELS = {"id", "message_id", "event_id", "document_id", "job", "instance"}


def our_metrics() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Exposed name → (type, label names) of every metric eboxd defines."""
    metrics.create_serve_metrics()
    found = {}
    for metric in (*metrics.WORKER_METRICS, *(getattr(metrics, name) for name in metrics.SERVE_METRICS)):
        (family,) = metric.describe()
        name = family.name + ("_total" if family.type == "counter" else "")
        found[name] = (family.type, tuple(metric._labelnames))
    return found


def documented() -> set[str]:
    return set(re.findall(r"^\| `([a-z_]+)` \|", CATALOGUE, flags=re.MULTILINE))


def test_metric_names_follow_prometheus_conventions() -> None:
    found = our_metrics()
    assert len(found) >= 14
    for name, (kind, labels) in found.items():
        assert re.fullmatch(r"eboxd_[a-z][a-z0-9_]*", name), name
        assert name.endswith("_total") == (kind == "counter"), name
        not_base_unit = re.search(r"_(ms|milliseconds|minutes|hours|days|kilobytes|megabytes)(_total)?$", name)
        assert not not_base_unit, f"{name}: base units"
        assert not set(labels) & FORBIDDEN_LABELS, f"{name}: unbounded or reserved label in {labels}"


def test_catalogue_documents_every_metric_with_its_labels() -> None:
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z_]+)` \|.*$", CATALOGUE, flags=re.MULTILINE)}
    for name, (kind, labels) in our_metrics().items():
        assert name in rows, f"{name} is not in docs/metrics.md"
        assert f"| {kind} |" in rows[name], f"{name}: documented type differs from {kind}"
        for label in labels:
            assert f"`{label}`" in rows[name], f"{name}: label {label} undocumented"


def expression_metrics(expr: str) -> set[str]:
    names = set(re.findall(r"\b((?:eboxd|dramatiq|process)_[a-z0-9_]+|up)\b(?!\s*\()", expr))
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in names}


def test_alerts_and_dashboard_use_only_documented_metrics() -> None:
    import yaml  # noqa: PLC0415

    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((REPO / "deploy" / "grafana" / "eboxd.json").read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    known = documented() | {"up", "process_start_time_seconds", "process_resident_memory_bytes"}
    used = set().union(*(expression_metrics(e) for e in exprs))
    assert used - known == set()
    assert {"eboxd_certificate_expiry_timestamp_seconds", "eboxd_ebox_token_failures_total",
            "eboxd_outbox_oldest_pending_seconds", "eboxd_exports_total"} <= used


WORKER_PROCESS = textwrap.dedent("""
    import sys
    from daemon import metrics
    import daemon.outbox.relay  # what a worker imports to purge the outbox
    n = int(sys.argv[1])
    metrics.EBOX_TOKEN_FAILURES.labels(reason="unreachable").inc(n)
    metrics.OUTBOX_PURGED_ROWS.inc(10 * n)
""")


def test_worker_processes_metrics_are_summed_and_carry_no_serve_metric(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    for n in (1, 2, 3):
        subprocess.run([sys.executable, "-c", WORKER_PROCESS, str(n)], env=env, check=True, timeout=60)
    assert len({f.name.rsplit("_", 1)[1] for f in tmp_path.glob("counter_*.db")}) == 3  # one file per pid
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    text = generate_latest(registry).decode()
    assert 'eboxd_ebox_token_failures_total{reason="unreachable"} 6.0' in text
    assert "eboxd_outbox_purged_rows_total 60.0" in text
    assert "pid=" not in text
    for serve_only in ("eboxd_outbox_pending", "eboxd_scheduler_last_loop", "eboxd_outbox_relay_batch",
                       "eboxd_broker_up"):
        assert serve_only not in text


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_worker_endpoint_sums_its_processes(database_url: str, engine: Engine, amqp_url: str,
                                            tmp_path: Path) -> None:
    """`eboxd worker --processes 2` with the unit's environment: one endpoint, totals of both."""
    long_ago = utcnow() - dt.timedelta(days=30)
    with engine.begin() as tx:
        tx.execute(sa.insert(OutboxRow), [
            {"event_id": f"00000000-0000-4000-8000-{i:012d}", "idempotency_key": f"metrics-test:{i}",
             "kind": "event", "topic": "be.eboxd.test", "payload": {}, "created_at": long_ago,
             "available_at": long_ago, "sent_at": long_ago} for i in range(40)])
    prom_dir, port = tmp_path / "prom", free_port()
    prom_dir.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EBOXD_") or k.startswith("EBOXD_TEST")}
    env = {**clean, "PYTHONPATH": str(REPO), "EBOXD_DATABASE__URL": database_url, "EBOXD_BROKER__URL": amqp_url,
           "EBOXD_LOGGING__FORMAT": "json", "EBOXD_DAEMON__DATA_DIR": str(tmp_path),
           "PROMETHEUS_MULTIPROC_DIR": str(prom_dir), "dramatiq_prom_db": str(prom_dir),
           "dramatiq_prom_host": "127.0.0.1", "dramatiq_prom_port": str(port)}
    worker = start(["worker", "--processes", "2", "--threads", "1"], env, tmp_path / "worker.log")
    broker = RabbitmqBroker(url=amqp_url)
    try:
        broker.declare_queue("maintenance")
        for _ in range(12):
            broker.enqueue(dramatiq.Message(queue_name="maintenance", actor_name="purge_outbox", args=(),
                                            kwargs={"retention_days": 1}, options={}))
        deadline, samples = time.monotonic() + 90, {}
        while time.monotonic() < deadline:
            try:
                samples = scrape(f"http://127.0.0.1:{port}/metrics")
            except OSError:
                samples = {}
            processed = samples.get(("dramatiq_messages_total",
                                     (("actor_name", "purge_outbox"), ("queue_name", "maintenance"))), 0)
            if processed >= 12:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the worker endpoint never counted 12 messages: "
                        + (tmp_path / "worker.log").read_text()[-3000:])
        assert samples[("eboxd_outbox_purged_rows_total", ())] == 40  # each row deleted once, in either process
        pids = {f.stem.rsplit("_", 1)[1] for f in prom_dir.glob("counter_*.db")}
        assert len(pids) >= 2, f"expected files of both worker processes, got {sorted(pids)}"
        assert not any(name.startswith(("eboxd_outbox_pending", "eboxd_scheduler")) for name, _ in samples)
        assert not any(dict(labels).get("pid") for _, labels in samples)
    finally:
        broker.close()
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()


def test_token_failures_are_counted_by_reason() -> None:
    def sample(reason: str) -> float:
        return REGISTRY.get_sample_value("eboxd_ebox_token_failures_total", {"reason": reason}) or 0.0

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "invalid_client", "error_description": "bad signature"})

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    environment = ebox.resolve_environment("sandbox", base_url="http://ebox.test")
    credential = ebox.Credential("self_service_chaman_1_test", ebox.generate_private_key(2048))
    before = {reason: sample(reason) for reason in ("invalid_client", "unreachable")}
    for handler, error in ((refuse, ebox.InvalidClientAssertion), (unreachable, ebox.TransportError)):
        client = httpx.Client(transport=httpx.MockTransport(handler))
        provider = ebox.TokenProvider(environment, http_client=client, sleep=lambda _s: None,
                                      retry=ebox.RetryPolicy(max_attempts=2))
        with pytest.raises(error):
            provider.get_token(credential)
    assert sample("invalid_client") == before["invalid_client"] + 1
    assert sample("unreachable") == before["unreachable"] + 1


def add_enterprise(engine: Engine, number: str, *, enabled: bool = True,
                   not_after: dt.datetime | None = None) -> None:
    with Session(engine) as session, session.begin():
        enterprise = Enterprise(number=number, name=f"Company {number}", enabled=enabled)
        session.add(enterprise)
        session.flush()
        if not_after is not None:
            session.add(Credential(enterprise_id=enterprise.id, kind="ebox", environment="sandbox",
                                   client_id="c", certificate_pem="-", certificate_not_after=not_after))


def test_certificate_expiry_gauge_follows_the_database(engine: Engine) -> None:
    soon = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    add_enterprise(engine, "0403170701", not_after=soon)
    add_enterprise(engine, "0202239951", enabled=False, not_after=soon)
    add_enterprise(engine, "0417497106")  # no certificate yet
    assert refresh_credential_gauges(engine).certificates == 1

    def expiry(number: str) -> float | None:
        return REGISTRY.get_sample_value("eboxd_certificate_expiry_timestamp_seconds",
                                         {"enterprise": number, "kind": "ebox"})

    assert expiry("0403170701") == soon.timestamp()
    assert expiry("0202239951") is None  # disabled: no alert for it
    assert REGISTRY.get_sample_value("eboxd_enterprises", {"state": "enabled"}) == 2
    assert REGISTRY.get_sample_value("eboxd_enterprises", {"state": "disabled"}) == 1
    with engine.begin() as tx:
        tx.execute(sa.update(Enterprise).where(Enterprise.number == "0403170701").values(enabled=False))
    refresh_credential_gauges(engine)
    assert expiry("0403170701") is None  # the series goes with it


@pytest.mark.slow
def test_serve_exposes_every_serve_metric_and_the_certificate_expiry(
        database_url: str, engine: Engine, amqp_url: str, tmp_path: Path) -> None:
    not_after = dt.datetime(2030, 6, 1, tzinfo=dt.UTC)
    add_enterprise(engine, "0403170701", not_after=not_after)
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EBOXD_") or k.startswith("EBOXD_TEST")}
    env = {**clean, "PYTHONPATH": str(REPO), "EBOXD_DATABASE__URL": database_url, "EBOXD_BROKER__URL": amqp_url,
           "EBOXD_BROKER__EVENTS_EXCHANGE": unique_name("test.events"), "EBOXD_SERVICE__HTTP_PORT": str(port),
           "EBOXD_SERVICE__LOOP_INTERVAL_SECONDS": "0.2", "EBOXD_DAEMON__DATA_DIR": str(tmp_path)}
    daemon = start(["serve"], env, tmp_path / "serve.log")
    try:
        deadline, samples = time.monotonic() + 30, {}
        while time.monotonic() < deadline:
            try:
                samples = scrape(f"http://127.0.0.1:{port}/metrics")
            except OSError:
                samples = {}
            if ("eboxd_certificate_expiry_timestamp_seconds",
                    (("enterprise", "0403170701"), ("kind", "ebox"))) in samples:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no certificate gauge: " + (tmp_path / "serve.log").read_text()[-2000:])
        assert samples[("eboxd_certificate_expiry_timestamp_seconds",
                        (("enterprise", "0403170701"), ("kind", "ebox")))] == not_after.timestamp()
        assert samples[("eboxd_broker_up", ())] == 1
        assert samples[("eboxd_build_info", (("version", __version__),))] == 1
        assert samples[("eboxd_enterprises", (("state", "enabled"),))] == 1
        exposed = {name for name, _ in samples}
        assert {"eboxd_outbox_pending", "eboxd_outbox_oldest_pending_seconds", "eboxd_outbox_relay_batch_seconds_count",
                "eboxd_scheduler_last_loop_timestamp_seconds"} <= exposed  # from the first scrape on
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
