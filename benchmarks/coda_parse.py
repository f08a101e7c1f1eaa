"""CODA parsing benchmark: our streaming parser against a naive read-everything parser, in the same run.

Generates CODA files of two sizes (default 10 and 100 MB: statements of 40 movements with OGMs,
RF references, free text, counterparties and a batch with details), then parses each in a fresh
child process (so peak RSS is that parse's own) with ``daemon.banking.coda.iter_statements`` and
with a naive parser that reads the whole file into memory and keeps every movement.

Usage: ``.venv/bin/python benchmarks/coda_parse.py [--sizes 10,100] [--keep DIR]``. The last line
is ``key=value`` pairs: ``mb_per_s`` (ours, largest file), ``ours_s_<N>mb``, ``naive_s_<N>mb``,
``ratio_vs_naive`` (naive time / our time, largest file), ``peak_rss_mib_<N>mb`` (ours) and
``naive_peak_rss_mib_<N>mb``. Flat memory means ``peak_rss_mib`` about equal across sizes.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daemon.banking import make_ogm, make_rf  # noqa: E402
from daemon.banking.coda_writer import MovementSpec, StatementSpec, coda_lines  # noqa: E402

IBANS = [f"BE{98 - int(f'{n:010d}{(n % 97) or 97:02d}111400') % 97:02d}{n:010d}{(n % 97) or 97:02d}"
         for n in range(1_000_000, 1_000_500)]


def _statement(index: int) -> StatementSpec:
    movements = []
    for i in range(40):
        n = index * 40 + i
        amount = Decimal(-(n % 9973 + 1)) / 100
        iban = IBANS[n % len(IBANS)]
        kind = n % 5
        if kind == 0:
            movements.append(MovementSpec.ogm(amount, make_ogm(n % 10**10).digits, counterparty_account=iban,
                                              counterparty_name=f"Beneficiary {n % 997}", counterparty_bic="GKCCBEBB",
                                              end_to_end_id=f"E2E{n}"))
        elif kind == 1:
            movements.append(MovementSpec.rf(amount, make_rf(str(n)).value, counterparty_account=iban))
        elif kind == 2:
            movements.append(MovementSpec(-amount, communication=f"Factuur {n} " + "omschrijving " * 8,
                                          counterparty_account=iban, counterparty_name="Klant"))
        elif kind == 3:
            details = [MovementSpec(amount, type="5", communication=f"detail {n}-{d}", counterparty_account=iban)
                       for d in range(3)]
            movements.append(MovementSpec(amount * 3, type="1", details=details))
        else:
            movements.append(MovementSpec(amount, communication=f"+++{make_ogm(n).display[3:-3]}+++ betaling"))
    return StatementSpec(account=IBANS[index % 7], old_balance=Decimal(10_000), paper_number=index % 999 + 1,
                         coda_sequence=index % 999 + 1, movements=movements)


def generate(path: Path, megabytes: int) -> int:
    """Write statements until the file reaches ``megabytes``; returns its size in bytes."""
    limit = megabytes * 1_000_000
    block = [line + "\n" for line in coda_lines([_statement(i) for i in range(25)])]
    text = "".join(block).encode("cp1252")
    written = 0
    with path.open("wb") as out:
        while written < limit:
            out.write(text)  # the same 25 statements again: dedupe keys repeat, parsing work does not
            written += len(text)
    return written


def naive_parse(path: Path) -> int:
    """Read everything, keep every movement (what a simple parser does)."""
    lines = path.read_bytes().decode("cp1252").splitlines()
    statements: list[dict] = []
    current: dict | None = None
    for line in lines:
        kind = line[:1]
        if kind == "0":
            current = {"movements": [], "lines": []}
            statements.append(current)
        elif current is None:
            raise ValueError("no header")
        current["lines"].append(line)
        if line[:2] == "21":
            amount = Decimal(int(line[32:47])).scaleb(-3)
            current["movements"].append({"seq": line[2:10], "amount": -amount if line[31] == "1" else amount,
                                         "comm": line[62:115], "structured": line[61] == "1"})
        elif line[:2] in ("22", "23") and current["movements"]:
            current["movements"][-1]["comm"] += line[10:63] if line[1] == "2" else line[82:125]
        elif kind == "1":
            current["old"] = Decimal(int(line[43:58])).scaleb(-3)
    return sum(len(s["movements"]) for s in statements)


def ours(path: Path) -> int:
    from daemon.banking.coda import iter_statements  # noqa: PLC0415

    return sum(len(list(m.walk())) for s in iter_statements(path) for m in s.movements)


def child(kind: str, path: Path) -> None:
    start = time.perf_counter()
    count = ours(path) if kind == "ours" else naive_parse(path)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_kib / 1024, "movements": count}))


def measure(kind: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(path)], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100", help="file sizes in MB, comma-separated (default 10,100)")
    parser.add_argument("--keep", type=Path, help="write the generated files here instead of a temporary dir")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        last_bytes = 0
        for size in sizes:
            path = folder / f"bench-{size}mb.cod"
            last_bytes = generate(path, size)
            a, b = measure("ours", path), measure("naive", path)
            if a["movements"] != b["movements"]:
                raise SystemExit(f"{path}: ours read {a['movements']} movements, naive {b['movements']}")
            print(f"{size} MB ({last_bytes} bytes, {a['movements']} movements): ours {a['seconds']:.2f} s, "
                  f"{a['peak_rss_mib']:.0f} MiB peak; naive {b['seconds']:.2f} s, {b['peak_rss_mib']:.0f} MiB peak",
                  flush=True)
            results[f"ours_s_{size}mb"] = a["seconds"]
            results[f"naive_s_{size}mb"] = b["seconds"]
            results[f"peak_rss_mib_{size}mb"] = a["peak_rss_mib"]
            results[f"naive_peak_rss_mib_{size}mb"] = b["peak_rss_mib"]
        big = sizes[-1]
        results = {"mb_per_s": last_bytes / 1e6 / results[f"ours_s_{big}mb"],
                   "ratio_vs_naive": results[f"naive_s_{big}mb"] / results[f"ours_s_{big}mb"], **results}
    print(" ".join(f"{key}={value:.2f}" for key, value in results.items()))


if __name__ == "__main__":
    main()
