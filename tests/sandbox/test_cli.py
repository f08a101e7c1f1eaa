"""``python -m daemon.sandbox``: foreground run with CLI knobs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from .conftest import make_certificate
from .specvalidate import validating_hook


def test_foreground_sandbox_with_flags(tmp_path: Path, rsa_key) -> None:
    cbe = "0417497106"
    pem = tmp_path / "client.pem"
    pem.write_bytes(make_certificate(rsa_key, cbe))
    command = [sys.executable, "-m", "daemon.sandbox", "--port", "0", "--seed", "3", "--register-cert",
               f"{pem}:{cbe}", "--fault", "error:1:502", "--maintenance", "fedfin"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.rstrip() == "}":
                break
        banner = json.loads("".join(lines))
        assert banner["seed"] == 3
        assert banner["notes"][0].startswith("client self_service_chaman_")
        assert "fedfin in maintenance" in banner["notes"][-1]
        with httpx.Client(event_hooks={"response": [validating_hook]}) as client:
            clients = client.get(banner["url"] + "/_sandbox/clients").json()
            assert clients[0]["enterpriseNumber"] == cbe
            assert client.get(banner["registries"]["nsso"] + "/ebox").status_code == 502
    finally:
        process.terminate()
        process.wait(timeout=10)
