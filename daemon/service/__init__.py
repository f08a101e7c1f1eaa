"""The long-running ``eboxd serve`` process."""

from __future__ import annotations

from daemon.service.daemon import Daemon, create_publisher, default_jobs
from daemon.service.sdnotify import sd_notify

__all__ = ["Daemon", "create_publisher", "default_jobs", "sd_notify"]
