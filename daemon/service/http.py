"""``/metrics`` (Prometheus text format) and ``/healthz`` on loopback, from a small thread, plus
optional POST routes (the Ponto webhook) given as ``(headers, raw body) -> (status, body)``."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

__all__ = ["StatusServer"]

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]
PostRoute = Callable[[Mapping[str, str], bytes], tuple[int, bytes]]
MAX_POST_BYTES = 1 << 20


class StatusServer:
    def __init__(self, host: str, port: int, health: HealthCheck,
                 post_routes: Mapping[str, PostRoute] | None = None) -> None:
        self._health = health
        self._post_routes = dict(post_routes or {})
        handler = self._handler_class()
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="status-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        health = self._health
        post_routes = self._post_routes

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                route = post_routes.get(self.path)
                if route is None:
                    self._send(404, "text/plain", b"not found\n")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 < length <= MAX_POST_BYTES:
                    self._send(413 if length else 411, "text/plain", b"body size\n")
                    return
                status, body = route(dict(self.headers.items()), self.rfile.read(length))
                self._send(status, "application/json", body)

            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
                elif self.path == "/healthz":
                    healthy, details = health()
                    body = json.dumps({"status": "ok" if healthy else "failing", **details}).encode()
                    self._send(200 if healthy else 503, "application/json", body)
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
