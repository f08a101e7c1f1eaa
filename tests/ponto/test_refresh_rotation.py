"""Ponto rotates refresh tokens: four worker processes needing a refresh at the same moment make
exactly one refresh grant, and no spent refresh token is ever presented again."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time

from daemon.banking.ponto import PROVIDER, PontoSettings
from daemon.credentials import TokenStore
from daemon.sandbox.ponto import PontoSandbox
from tests.conftest import REPO
from tests.ponto.conftest import NUMBER


def test_four_worker_processes_refresh_once_and_never_reuse(store: TokenStore, settings: PontoSettings,
                                                            sandbox: PontoSandbox, connected: str,
                                                            database_url: str, master_key: bytes) -> None:
    before = store.load(PROVIDER, NUMBER)
    assert before is not None
    start_at = time.time() + 3
    arguments = {"database_url": database_url, "key": master_key.hex(), "subject": NUMBER,
                 "offset": sandbox.state.access_lifetime - 30,  # the access token expires in 30 s: due
                 "settings": dataclasses.asdict(settings), "start_at": start_at}
    processes = [subprocess.Popen([sys.executable, "-m", "tests.ponto.refresh_worker", json.dumps(arguments)],
                                  cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sandbox.state.refresh_grants == 1
    assert sandbox.state.refresh_reuses == 0
    assert [r["accounts"] for r in results] == [1, 1, 1, 1]
    assert {r["version"] for r in results} == {before.version + 1}
    after = store.load(PROVIDER, NUMBER)
    assert after is not None
    assert after.pair.refresh_token != before.pair.refresh_token
