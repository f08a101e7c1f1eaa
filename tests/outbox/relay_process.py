"""A relay in its own process, for the crash tests: ``python relay_process.py DB AMQP EXCHANGE [--die-after N]``.

With ``--die-after N`` the process SIGKILLs itself after the broker confirmed batch N+1 but before
the rows are marked sent: the worst moment for a crash.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading

from daemon.db import create_db_engine
from daemon.outbox import ConfirmingPublisher, OutboxRelay


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("amqp_url")
    parser.add_argument("exchange")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--die-after", type=int)
    args = parser.parse_args()
    relay = OutboxRelay(create_db_engine(args.database_url),
                        ConfirmingPublisher(args.amqp_url, events_exchange=args.exchange), batch_size=args.batch_size)
    if args.die_after is not None:
        record = relay._record
        batches = 0

        def record_or_die(*a: object, **kw: object) -> None:
            nonlocal batches
            batches += 1
            if batches > args.die_after:
                os.kill(os.getpid(), signal.SIGKILL)
            record(*a, **kw)

        relay._record = record_or_die  # type: ignore[method-assign]
    relay.run(threading.Event(), idle_interval=0.05)


if __name__ == "__main__":
    main()
