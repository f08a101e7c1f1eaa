"""The module dramatiq's CLI loads in every worker process (``eboxd worker`` points it here).

Order matters: configure logging and the broker first, then import the actor modules, whose
decorators register with the current broker.
"""

from __future__ import annotations

import os

import dramatiq

from daemon.config import load_config
from daemon.logging import configure_logging
from daemon.workers.broker import create_broker

config = load_config()
configure_logging(config.logging.level, config.logging.format)
broker = create_broker(config, prometheus=bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")))
dramatiq.set_broker(broker)

from daemon.workers import maintenance  # noqa: E402  (needs the broker set above)

__all__ = ["broker", "maintenance"]
