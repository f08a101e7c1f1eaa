"""Local simulators of the external systems eboxd talks to (``eboxd sandbox``).

Only the e-Box sandbox exists so far; Exact, Yuki and Ponto sandboxes will sit beside it.
"""

from __future__ import annotations

from daemon.sandbox.ebox import EboxSandbox, serve_sandbox

__all__ = ["EboxSandbox", "serve_sandbox"]
