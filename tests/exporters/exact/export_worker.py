"""One export in a separate process, as a worker process would do it: ``python -m
tests.exporters.exact.export_worker '<json>'``. It waits for a common start time so that all
processes reach Exact together, and prints the outcome as JSON."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path

from eboxd_exact import ExactPlugin
from eboxd_exact.exporter import ExactExporter

from daemon.credentials import TokenStore
from daemon.db import create_db_engine
from daemon.exports import run_export
from daemon.plugins import PluginManager
from daemon.secrets import SecretBox
from daemon.store import FilesystemStore


def main(arguments: dict[str, object]) -> None:
    offset = dt.timedelta(seconds=float(arguments["offset"]))  # type: ignore[arg-type]

    def clock() -> dt.datetime:
        return dt.datetime.now(dt.UTC) + offset

    engine = create_db_engine(str(arguments["database_url"]))
    secrets = SecretBox([bytes.fromhex(str(arguments["key"]))])
    exporter = ExactExporter(tokens=TokenStore(engine, secrets, clock=clock), clock=clock)
    manager = PluginManager()
    manager.register(ExactPlugin(exporter), name="exact", distribution="eboxd-exact")
    store = FilesystemStore(Path(str(arguments["store"])))
    time.sleep(max(float(arguments["start_at"]) - time.time(), 0))  # type: ignore[arg-type]
    outcome = run_export(engine, store, secrets, manager, int(arguments["document_id"]), "exact",  # type: ignore[call-overload]
                         str(arguments["target"]), last_attempt=True)
    print(json.dumps({"status": outcome.status, "error": outcome.error}))
    engine.dispose()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
