"""The systemd units, as deploy/install.sh installs them: `systemd-analyze verify` finds nothing to
say, `systemd-analyze security` scores every service at most 2.0, and the settings the daemon and
dramatiq depend on are there.

PID 1 is not systemd on CI machines, so nothing is started; systemd-analyze reads the unit files
offline. The installed units point at /opt/eboxd/venv, which does not exist here: the tests verify
a copy whose ExecStart points at this checkout's venv instead (verify checks that it exists).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.config import ServiceConfig, WorkerConfig, load_config
from daemon.secrets import CREDENTIAL_NAME, SecretBox
from daemon.workers.tasks import QUEUES

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SERVICES = ["eboxd.service", f"eboxd-worker@{QUEUES[0]}.service", "eboxd-migrate.service"]
UNITS = [*SERVICES, "eboxd.target", "eboxd-worker@.service"]
MAX_EXPOSURE = 2.0
HARDENING: dict[str, str | list[str]] = {
    "User": "eboxd", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
    "PrivateDevices": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "", "RestrictSUIDSGID": "yes",
    "SystemCallFilter": ["@system-service", "~@privileged @resources"], "SystemCallArchitectures": "native",
    "MemoryDenyWriteExecute": "yes",
    "UMask": "0077",
}


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze is missing (Debian package systemd)")
    return found


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A system root that deploy/install.sh has installed into (without a venv)."""
    target = tmp_path_factory.mktemp("root")
    result = subprocess.run(["bash", str(REPO / "deploy" / "install.sh"), "--root", str(target), "--no-venv"],
                            env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return target


@pytest.fixture(scope="module")
def unit_dir(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("units")
    shutil.copytree(root / "etc" / "systemd" / "system", copy, dirs_exist_ok=True)
    assert (VENV_BIN / "eboxd").exists()
    for unit in copy.glob("*.service"):
        unit.write_text(unit.read_text().replace("/opt/eboxd/venv/bin/", f"{VENV_BIN}/"))
    return copy


def analyze(unit_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # SYSTEMD_UNIT_PATH makes systemd-analyze load units and their drop-ins from unit_dir first.
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{unit_dir}:", "SYSTEMD_LOG_LEVEL": "notice"}
    return subprocess.run([systemd_analyze(), *args], cwd=unit_dir, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def directives(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` → values, in order (systemd keys may repeat)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return found


def one(unit: dict[str, list[str]], key: str) -> str:
    (value,) = unit[key]
    return value


def environment(unit: dict[str, list[str]]) -> dict[str, str]:
    pairs = [pair for line in unit.get("Service.Environment", []) for pair in line.split()]
    return dict(pair.split("=", 1) for pair in pairs)


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(min|s)?", value)
    assert match, value
    return int(match.group(1)) * (60 if match.group(2) == "min" else 1)


def test_systemd_analyze_verify_finds_nothing(unit_dir: Path) -> None:
    result = analyze(unit_dir, "verify", "--man=no", *UNITS)
    assert result.returncode == 0, result.stderr
    # verify exits 0 on unknown keys and bad values too: it must have nothing at all to say.
    assert (result.stdout + result.stderr).strip() == ""


def test_verify_as_used_here_does_catch_mistakes(unit_dir: Path) -> None:
    broken = unit_dir / "eboxd-broken.service"
    broken.write_text((unit_dir / "eboxd.service").read_text().replace("Type=notify", "Tpye=notify")
                      .replace("ProtectSystem=strict", "ProtectSystem=stirct"))
    try:
        result = analyze(unit_dir, "verify", "--man=no", "eboxd-broken.service")
    finally:
        broken.unlink()
    assert "Unknown key 'Tpye'" in result.stderr
    assert "stirct" in result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_security_exposure_is_at_most_2(unit_dir: Path, service: str) -> None:
    result = analyze(unit_dir, "security", "--offline=true", "--threshold=20", "--no-pager", service)
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(rf"Overall exposure level for {re.escape(service)}: (\d+\.\d+) (\w+)", result.stdout)
    assert match, result.stdout[-2000:]
    score = float(match.group(1))
    print(f"{service}: exposure {score} {match.group(2)}")
    assert score <= MAX_EXPOSURE
    assert match.group(2) == "OK"


def test_security_threshold_fails_a_bare_unit(tmp_path: Path) -> None:
    (tmp_path / "bare.service").write_text(f"[Service]\nExecStart={VENV_BIN}/eboxd serve\n")
    result = analyze(tmp_path, "security", "--offline=true", "--threshold=20", "--no-pager", "bare.service")
    assert result.returncode != 0
    assert re.search(r"Overall exposure level for bare\.service: 9\.\d UNSAFE", result.stdout)


def test_the_daemon_unit_is_notify_with_a_watchdog(root: Path) -> None:
    unit = directives(root / "etc/systemd/system/eboxd.service")
    assert one(unit, "Service.Type") == "notify"
    assert one(unit, "Service.NotifyAccess") == "main"
    assert one(unit, "Service.Restart") == "on-failure"
    assert one(unit, "Service.ExecStart") == "/opt/eboxd/venv/bin/eboxd serve"
    watchdog = seconds(one(unit, "Service.WatchdogSec"))
    # The loop pings every round: many rounds fit in the half of WatchdogSec systemd allows.
    assert watchdog / 2 >= 10 * ServiceConfig().loop_interval_seconds
    assert environment(unit)["PYTHONFAULTHANDLER"] == "1"  # a watchdog abort prints every thread's stack


def test_the_worker_template_stops_gracefully_and_serves_summed_metrics(root: Path) -> None:
    unit = directives(root / "etc/systemd/system/eboxd-worker@.service")
    assert one(unit, "Service.Type") == "exec"
    assert one(unit, "Service.KillMode") == "mixed"
    assert one(unit, "Service.ExecStart") == "/opt/eboxd/venv/bin/eboxd worker --queues %i"
    assert one(unit, "Service.ExecReload") == "/bin/kill -HUP $MAINPID"
    assert seconds(one(unit, "Service.TimeoutStopSec")) >= WorkerConfig().shutdown_timeout_seconds + 15
    env = environment(unit)
    runtime = one(unit, "Service.RuntimeDirectory")
    assert env["PROMETHEUS_MULTIPROC_DIR"] == env["dramatiq_prom_db"] == f"%t/{runtime}"  # emptied at each start
    assert env["dramatiq_prom_host"] == "127.0.0.1"


def test_every_service_is_hardened_alike_and_gets_the_master_key(root: Path) -> None:
    units = {name: directives(root / "etc/systemd/system" / name)
             for name in ("eboxd.service", "eboxd-worker@.service", "eboxd-migrate.service")}
    for name, unit in units.items():
        for key, value in HARDENING.items():
            assert unit.get(f"Service.{key}") == (value if isinstance(value, list) else [value]), f"{name}: {key}"
        assert one(unit, "Service.LoadCredential") == f"{CREDENTIAL_NAME}:/etc/eboxd/master.key", name
        assert one(unit, "Service.StateDirectory") == "eboxd", name
        assert environment(unit)["EBOXD_CONFIG"] == "/etc/eboxd/eboxd.toml", name
    hardening = [{k: v for k, v in unit.items() if k.startswith("Service.") and k.split(".")[1] in
                  {*HARDENING, "Group", "PrivateUsers", "ProtectProc", "RestrictAddressFamilies",
                   "RestrictNamespaces", "SystemCallErrorNumber", "LockPersonality", "KeyringMode"}}
                 for unit in units.values()]
    assert all(block == hardening[0] for block in hardening)


def test_the_target_groups_the_daemon_and_its_workers(root: Path) -> None:
    system = root / "etc/systemd/system"
    target = directives(system / "eboxd.target")
    assert "eboxd.service" in one(target, "Unit.Wants").split()
    assert one(target, "Install.WantedBy") == "multi-user.target"
    for name in ("eboxd.service", "eboxd-worker@.service"):
        unit = directives(system / name)
        assert one(unit, "Unit.PartOf") == "eboxd.target"
        assert one(unit, "Install.WantedBy") == "eboxd.target"
        assert "eboxd-migrate.service" in one(unit, "Unit.After").split()


def test_install_lays_out_config_key_user_and_one_port_per_queue(root: Path) -> None:
    config_file = root / "etc/eboxd/eboxd.toml"
    key_file = root / "etc/eboxd/master.key"
    for path in (config_file, key_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
    config = load_config(config_file, environ={})
    assert str(config.data_dir) == "/var/lib/eboxd"
    assert config.secrets.key_file == "/etc/eboxd/master.key"
    SecretBox.from_file(key_file)
    assert re.search(r"^eboxd:x:\d+:\d+:.*:/var/lib/eboxd:", (root / "etc/passwd").read_text(), re.MULTILINE)
    ports = []
    for queue in QUEUES:
        drop_in = directives(root / f"etc/systemd/system/eboxd-worker@{queue}.service.d/metrics.conf")
        ports.append(int(environment(drop_in)["dramatiq_prom_port"]))
    assert len(set(ports)) == len(QUEUES)
    assert ports[0] == 9191
    wrapper = root / "usr/local/bin/eboxd"
    assert os.access(wrapper, os.X_OK)
    assert "runuser -u eboxd -- /opt/eboxd/venv/bin/eboxd" in wrapper.read_text()
    for shipped in ("share/doc/operations.md", "share/doc/metrics.md", "share/prometheus/alerts.yml",
                    "share/grafana/eboxd.json"):
        assert (root / "opt/eboxd" / shipped).stat().st_size > 0, shipped


def test_install_again_keeps_the_configuration_and_the_key(root: Path) -> None:
    config_file, key_file = root / "etc/eboxd/eboxd.toml", root / "etc/eboxd/master.key"
    config_file.write_text(config_file.read_text() + "\n# edited by the operator\n")
    before = (config_file.read_bytes(), key_file.read_bytes())
    result = subprocess.run(["bash", str(REPO / "deploy" / "install.sh"), "--root", str(root), "--no-venv"],
                            env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert (config_file.read_bytes(), key_file.read_bytes()) == before
