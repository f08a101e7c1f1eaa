"""Fuzzing with the long budget: ``tests/reliability/test_fuzz.py`` under the hypothesis profile ``long``.

What runs
    The same fuzz targets the suite runs with its small, derandomised ``ci`` budget (CODA parser on
    damaged written files, OGM/RF/IBAN/BIC parsing and finding in damaged text, payment-field
    extraction from damaged and arbitrary letter text), here with ``--hypothesis-profile=long``:
    randomised (a new seed each run, so successive runs explore different inputs) and 10 000
    examples a test. pytest runs in this process, so the examples are counted by the tests
    themselves (``test_fuzz.EXAMPLES``: one per call of a test body, shrinking included), not
    taken from the budget. A failure prints hypothesis's falsifying example above the summary.

Usage: ``.venv/bin/python benchmarks/fuzz.py`` from the repository root (no arguments). The last line
is ``examples=… seconds=… failures=…``; the exit code is pytest's (0 when nothing failed).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TARGET = "tests/reliability/test_fuzz.py"


class _Outcomes:
    """Counts the tests that failed (pytest's exit code alone does not say how many)."""

    def __init__(self) -> None:
        self.failures = 0

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failures += 1


def main() -> int:
    sys.path.insert(0, str(REPO))
    outcomes = _Outcomes()
    started = time.monotonic()
    code = pytest.main([str(REPO / TARGET), "-q", "-p", "no:cacheprovider", "--hypothesis-profile=long",
                        "--rootdir", str(REPO)], plugins=[outcomes])
    seconds = time.monotonic() - started
    # The module pytest imported (same process): its counters hold this run's examples.
    examples = sys.modules["tests.reliability.test_fuzz"].EXAMPLES if "tests.reliability.test_fuzz" in sys.modules \
        else {}
    if not examples:
        print("no example ran: the fuzz tests were not collected", file=sys.stderr)
        code = code or 1
    for name, count in sorted(examples.items()):
        print(f"{name}: {count} examples")
    print(f"examples={sum(examples.values())} seconds={seconds:.1f} failures={outcomes.failures}")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
