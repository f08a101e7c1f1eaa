"""The soak run: the chaos run of ``tests/reliability`` (see ``tests/reliability/chaos.py``), larger.

About 5,000 documents (358 enterprises × 14) through real ``eboxd serve`` and two ``eboxd worker``
process groups on a private PostgreSQL and RabbitMQ started for the run (never the shared test
servers), while a worker is SIGKILLed and replaced twelve times, RabbitMQ and PostgreSQL are each
stopped and started once, and the e-Box sandbox answers 10 % 5xx, 5 % too slowly, cuts 1 % of the
downloads and refuses 2 % of the tokens (which live 30 s). Every enterprise exports to a ZIP drop
folder and every other one to Exact Online too (the in-process Exact sandbox, a division each),
which stores documents and attachments now and then without answering. Then a CODA file pays half
of the payment letters. Last line: ``docs=… lost=… duplicated=… exports_lost=… exports_duplicated=…
events_lost=… events_duplicated=… matches_wrong=… worker_kills=… broker_restarts=… db_restarts=…
seconds=… events_redelivered=… paid=… startup_exits=… store_unreferenced=… staging_leftovers=…
exact_docs=… exact_reconciled=… exact_faults=…`` (exports counted over both targets); the exit code
is 1 when something was lost or duplicated.

    .venv/bin/python benchmarks/soak.py [--documents N] [--kills N]
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.reliability.chaos import ChaosPlan, run_chaos


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the children and servers on the way out
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--documents", type=int, default=5_000)
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--logs", type=Path, help="keep the processes' logs in this directory")
    args = parser.parse_args()
    plan = ChaosPlan(documents=args.documents, worker_kills=args.kills, kill_until=0.9,
                     timeout=max(300.0, args.documents * 0.4))
    report = run_chaos(plan, keep=args.logs)
    for seconds, what in report.timeline:
        print(f"{seconds:6.1f} s  {what}", file=sys.stderr)
    for problem in report.problems():
        print(f"problem: {problem}", file=sys.stderr)
    print(f"Exact faults met: {dict(report.exact_faults)}", file=sys.stderr)
    print(f"faults fired: {dict(report.faults_fired)}; processes that could not start during an outage "
          f"(exit 2, started again as systemd would): {dict(report.startup_exits) or 'none'}", file=sys.stderr)
    print(report.line())
    return 1 if report.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
