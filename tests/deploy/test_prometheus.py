"""Alert rules and dashboard: promtool parses them and unit-tests every alert; each alert has a
runbook section in docs/operations.md; every dashboard query is valid PromQL.

promtool comes from Debian's prometheus package: scripts/test.sh extracts the binary into
.venv/bin (no server is installed or started).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from itertools import combinations
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = Path(__file__).with_name("alerts_test.yml")
DASHBOARD = REPO / "deploy" / "grafana" / "eboxd.json"
OPERATIONS = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool") or str(REPO / ".venv" / "bin" / "promtool")
    if not Path(found).exists():
        pytest.fail("promtool is missing: `make test` installs it (scripts/test.sh, from Debian's prometheus package)")
    return found


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_checks_the_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_unit_tests_fire_every_alert_and_none_on_a_healthy_node(promtool: str) -> None:
    names = {rule["alert"] for rule in rules()}
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert fired == names, "every alert needs a test where it fires"
    (healthy,) = [test for test in tests if test["name"] == "a healthy node raises nothing"]
    assert {case["alertname"] for case in healthy["alert_rule_test"] if not case["exp_alerts"]} == names
    result = run(promtool, "test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_labelled_annotated_and_has_a_runbook_section() -> None:
    headings = {h.lower() for h in re.findall(r"^### (\w+)$", OPERATIONS, flags=re.MULTILINE)}
    for rule in rules():
        name = rule["alert"]
        assert re.fullmatch(r"Eboxd[A-Z][A-Za-z]+", name), name
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), name
        assert rule["annotations"]["runbook"] == f"docs/operations.md#{name.lower()}"
        assert name.lower() in headings, f"no '### {name}' section in docs/operations.md"
    documented = set(re.findall(r"^\| `(Eboxd\w+)` \|", (REPO / "docs" / "metrics.md").read_text(), re.MULTILINE))
    assert documented == {rule["alert"] for rule in rules()}


def test_the_issue_s_four_alerts_exist() -> None:
    exprs = {rule["alert"]: rule["expr"] for rule in rules()}
    assert "eboxd_scheduler_last_loop_timestamp_seconds" in exprs["EboxdSchedulerStalled"]  # poller stalled
    assert "eboxd_exports_total" in exprs["EboxdExportsFailing"]
    assert "30 * 86400" in exprs["EboxdCertificateExpiringSoon"]
    assert "eboxd_outbox_oldest_pending_seconds" in exprs["EboxdOutboxBacklog"]


def dashboard_targets() -> list[tuple[int, str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["id"], target["refId"], target["expr"])
            for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "eboxd-overview"
    assert dashboard["title"] == "eboxd"
    (variable,) = dashboard["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == ("datasource", "datasource", "prometheus")
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    for a, b in combinations(panels, 2):
        ga, gb = a["gridPos"], b["gridPos"]
        overlap = (ga["x"] < gb["x"] + gb["w"] and gb["x"] < ga["x"] + ga["w"]
                   and ga["y"] < gb["y"] + gb["h"] and gb["y"] < ga["y"] + ga["h"])
        assert not overlap, f"panels {a['title']!r} and {b['title']!r} overlap"


def test_every_dashboard_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    # promtool has no offline query parser; recording rules are checked with the real one.
    targets = dashboard_targets()
    assert len(targets) >= 20
    records = [{"record": f"dashboard:panel{pid}:{ref}", "expr": expr.replace("$__rate_interval", "5m")}
               for pid, ref, expr in targets]
    checked = tmp_path / "dashboard_rules.yml"
    checked.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    result = run(promtool, "check", "rules", str(checked))
    assert result.returncode == 0, result.stdout + result.stderr
