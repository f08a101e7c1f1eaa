"""A small HTTP load generator, run as its own process so that it does not share the sandbox's GIL.

Reads ``{"seconds", "connections", "targets": [{"path", "token"}]}`` as JSON on stdin; each
connection is a thread with one keep-alive ``http.client`` connection sending GETs round robin over
the targets with their bearer tokens. Prints ``{"requests", "errors", "requests_per_s"}``.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit


def _run(targets: list[dict[str, str]], offset: int, until: float, counts: list[int]) -> None:
    first = urlsplit(targets[0]["path"])
    conn = http.client.HTTPConnection(first.hostname or "127.0.0.1", first.port or 80, timeout=30)
    index = offset
    while time.monotonic() < until:
        target = targets[index % len(targets)]
        index += 1
        url = urlsplit(target["path"])
        conn.request("GET", f"{url.path}?{url.query}", headers={"Authorization": f"Bearer {target['token']}",
                                                                "Accept": "application/json"})
        response = conn.getresponse()
        response.read()
        counts[0 if response.status == 200 else 1] += 1
    conn.close()


def main() -> None:
    spec: dict[str, Any] = json.load(sys.stdin)
    targets = spec["targets"]
    until = time.monotonic() + float(spec["seconds"])
    counts = [[0, 0] for _ in range(int(spec["connections"]))]
    started = time.monotonic()
    threads = [threading.Thread(target=_run, args=(targets, i * 97, until, counts[i])) for i in range(len(counts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    ok, errors = sum(c[0] for c in counts), sum(c[1] for c in counts)
    json.dump({"requests": ok, "errors": errors, "requests_per_s": ok / elapsed}, sys.stdout)


if __name__ == "__main__":
    main()
