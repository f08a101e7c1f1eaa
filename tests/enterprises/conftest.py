from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from daemon.sandbox.ebox import serve_sandbox
from daemon.sandbox.ebox.server import EboxSandbox
from daemon.sandbox.httpkit import Request, Response
from tests.sandbox.specvalidate import validate_response

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sandbox() -> Iterator[EboxSandbox]:
    """The e-Box sandbox; every JSON answer it gives during the test is checked against the
    vendored official contract, whoever asked (here: eboxd processes)."""
    server = serve_sandbox("127.0.0.1", 0, seed=11, enterprises=3)
    violations: list[str] = []
    checked = [0]

    def check(request: Request, response: Response) -> None:
        if request.path.startswith("/_sandbox") or "json" not in response.headers.get("Content-Type", ""):
            return
        exchange = httpx.Response(response.status, headers=response.headers, content=response.body,
                                  request=httpx.Request(request.method, server.url + request.path))
        try:
            validate_response(exchange)
            checked[0] += 1
        except AssertionError as error:
            violations.append(str(error))

    server.observe(check)
    yield server
    server.shutdown()
    assert not violations, violations
    assert checked[0] > 0 or not server.requests(), "no sandbox response was validated"


@dataclass
class Eboxd:
    """``eboxd`` as an operator runs it: a separate process, its environment, its output."""

    env: dict[str, str]
    log: list[str]

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "daemon", "--verbose", *args], capture_output=True, text=True,
                                timeout=120, env=self.env, check=False)
        self.log.append(result.stderr)
        if ok:
            assert result.returncode == 0, f"eboxd {' '.join(args)} failed: {result.stderr}"
        return result


@pytest.fixture
def eboxd(database_url: str, sandbox: EboxSandbox, tmp_path: Path) -> Eboxd:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EBOXD_") or k.startswith("EBOXD_TEST")}
    env = {**clean, "PYTHONPATH": str(REPO), "EBOXD_DATABASE__URL": database_url,
           "EBOXD_DAEMON__DATA_DIR": str(tmp_path / "state"), "EBOXD_EBOX__SANDBOX_URL": sandbox.url,
           "EBOXD_LOGGING__LEVEL": "debug", "EBOXD_LOGGING__FORMAT": "json", "EBOXD_EBOX__KEY_SIZE": "2048"}
    runner = Eboxd(env, [])
    runner("init")
    return runner


def seeded(sandbox: EboxSandbox, index: int = 0) -> tuple[str, str]:
    enterprise = sandbox.describe()["enterprises"][index]
    return enterprise["enterpriseNumber"], enterprise["name"]
