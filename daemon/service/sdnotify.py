"""sd_notify(3) with the standard library: READY, WATCHDOG, STATUS, STOPPING.

Not the ``sdnotify`` package: it encodes Latin-1 and swallows errors, so a non-Latin STATUS
silently disappears.
"""

from __future__ import annotations

import os
import socket

__all__ = ["sd_notify", "watchdog_interval"]


def sd_notify(*lines: str) -> bool:
    """Send ``lines`` to the service manager; False when not running under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address[0] == "@":
        address = "\0" + address[1:]  # abstract namespace socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall("\n".join(lines).encode("utf-8"))
    return True


def watchdog_interval() -> float | None:
    """How often to ping: half of ``WATCHDOG_USEC``, or None if the watchdog is off or not ours."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None
