"""The module dramatiq's CLI loads in every worker process (``eboxd worker`` points it here).

Order matters: configure logging and the broker first, then import the actor modules, whose
decorators register with the current broker.
"""

from __future__ import annotations

import os

import dramatiq
import structlog

from daemon.config import load_config
from daemon.logging import configure_logging
from daemon.workers.broker import create_broker

PROM_DB, PROM_HOST = "dramatiq_prom_db", "dramatiq_prom_host"  # dramatiq's names, lower case

config = load_config()
configure_logging(config.logging.level, config.logging.format)
if (multiproc_dir := os.environ.get("PROMETHEUS_MULTIPROC_DIR")) and (
        os.environ.get(PROM_DB) != multiproc_dir or not os.environ.get(PROM_HOST)):
    # dramatiq's exposition server runs in a process forked before this module is imported: only
    # the environment given to `eboxd worker` reaches it (the systemd unit sets all three).
    structlog.get_logger(__name__).warning(
        "worker.metrics_environment", hint="set dramatiq_prom_db to PROMETHEUS_MULTIPROC_DIR and "
        "dramatiq_prom_host (default 0.0.0.0), or worker metrics are not served")
broker = create_broker(config, prometheus=bool(multiproc_dir))
dramatiq.set_broker(broker)

from daemon.workers import banking, exporting, fetching, maintenance, polling  # noqa: E402  (needs the broker)

__all__ = ["banking", "broker", "exporting", "fetching", "maintenance", "polling"]
