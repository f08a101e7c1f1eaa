"""A tiny HTTP toolkit shared by the sandboxes: request/response types, a router, a server.

Built on :class:`http.server.ThreadingHTTPServer` only; no web framework. A sandbox is an
*app*: a callable taking a :class:`Request` and returning a :class:`Response`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "App",
    "Handler",
    "Request",
    "Response",
    "Router",
    "RunningServer",
    "json_response",
    "start_server",
]


@dataclass
class Request:
    """An incoming request, decoded enough for routing."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    base_url: str = ""
    """``http://<Host header>``: the origin as the client sees it."""
    flags: set[str] = field(default_factory=set)
    """Markers set by middleware for handlers (e.g. an injected fault)."""

    def header(self, name: str, default: str | None = None) -> str | None:
        """Return a header value, case-insensitively."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return default

    def json(self) -> Any:
        """Decode the body as JSON (raises ``ValueError`` when it is not)."""
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, str]:
        """Decode an ``application/x-www-form-urlencoded`` body (last value wins)."""
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {key: values[-1] for key, values in parsed.items()}


@dataclass
class Response:
    """An outgoing response. ``truncate_to`` cuts the body after that many bytes (fault). A ``stream``
    of ``stream_length`` bytes is sent instead of ``body`` (contents too large to hold in memory)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    truncate_to: int | None = None
    delay: float = 0.0
    stream: Iterator[bytes] | None = None
    stream_length: int = 0


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    """Build a JSON response (UTF-8, compact)."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    return Response(status, body, all_headers)


App = Callable[[Request], Response]
Route = tuple[str, "re.Pattern[str]", App]


class Router:
    """Map ``(method, path template)`` to handlers; templates use ``{name}`` segments."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, template: str, handler: App) -> None:
        """Register ``handler`` for ``method`` and a template such as ``/a/{id}/b``."""
        parts = re.split(r"\{(\w+)\}", template)
        pattern = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
        self._routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    def match(self, method: str, path: str) -> tuple[App, dict[str, str]] | str | None:
        """Return ``(handler, params)``, ``"method"`` if only the method differs, or ``None``."""
        path_matched = False
        for route_method, pattern, handler in self._routes:
            found = pattern.match(path)
            if found is None:
                continue
            path_matched = True
            if route_method == method.upper():
                return handler, {key: unquote(value) for key, value in found.groupdict().items()}
        return "method" if path_matched else None

    def dispatch(self, request: Request, path: str, missing: Callable[[int], Response]) -> Response:
        """Call the handler for ``path`` with its parameters; ``missing(404 | 405)`` otherwise."""
        found = self.match(request.method, path)
        if found is None or isinstance(found, str):
            return missing(404 if found is None else 405)
        handler, params = found
        request.params.update(params)
        return handler(request)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        super().__init__(address, Handler)
        self.app = app
        self.observers: list[Callable[[Request, Response], None]] = []


class Handler(BaseHTTPRequestHandler):
    """Turns each HTTP exchange into a :class:`Request` for the server's app."""

    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body are written separately: without this, Nagle's algorithm and delayed ACKs
    # add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    server_version = "eboxd-sandbox"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log (the sandbox keeps its own request log)."""

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=dict(self.headers.items()),
            body=body,
            base_url=f"http://{host}",
        )
        response = self.server.app(request)
        for observe in self.server.observers:
            observe(request, response)
        self._write(response)

    def _write(self, response: Response) -> None:
        if response.delay > 0:
            time.sleep(response.delay)
        self.send_response(response.status)
        headers = dict(response.headers)
        headers["Content-Length"] = str(response.stream_length if response.stream is not None else len(response.body))
        for key, value in headers.items():
            self.send_header(key, value)
        if response.truncate_to is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        body = response.body if response.truncate_to is None else response.body[: response.truncate_to]
        if self.command != "HEAD":
            self.wfile.write(body)
            for chunk in response.stream or ():
                self.wfile.write(chunk)
        self.wfile.flush()

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class RunningServer:
    """A server running in a background thread; ``url`` is its base URL (no trailing slash)."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        host, port = server.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"sandbox-{self.port}", daemon=True)
        self._thread.start()

    def observe(self, callback: Callable[[Request, Response], None]) -> None:
        """Call ``callback`` with every request and the response about to be sent (tests check
        responses against the contract this way, whoever the client is)."""
        self._server.observers.append(callback)

    def shutdown(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def wait(self) -> None:
        """Block until the server stops (for foreground runs)."""
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)


def start_server(app: App, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Bind ``host:port`` (0 = any free port) and serve ``app`` in a daemon thread."""
    return RunningServer(_Server((host, port), app))
