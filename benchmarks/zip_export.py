"""ZIP bundle benchmark: ``eboxd export zip`` over 1,000 and 10,000 documents, against ``zip`` in the same run.

Set-up: a temporary data folder with an SQLite database migrated by eboxd and a filesystem
document store, two enterprises (one with 1,000 documents, one with 10,000), each document its
own message (sender, subject, publication date over one quarter), a third of them with a payment
request; contents are incompressible bytes (like PDFs), 32 KiB each by default.

Ours: ``eboxd export zip --enterprise N -o bundle.zip --no-progress`` run through
``daemon.cli.main`` in a fresh child process, timed inside it (interpreter start-up excluded, the
command's imports and plugin loading included); its peak RSS is that process's own
(``ru_maxrss``). The bundle is then checked: ``zipfile.testzip()``, one entry per document.

Peer: Info-ZIP ``zip -q -0 -r`` of the same stored files (the store folder of that enterprise's
documents, stored uncompressed like ours), run in its own process and timed from outside; it
copies bytes only (no database, no checksums, no manifest), so it is the floor, not a rival.
Without ``zip`` on the PATH the peer is a naive Python exporter instead: every row loaded at
once, each file read whole and added with ``ZipFile.writestr``. ``ratio`` = our documents/s ÷
the peer's (``peer=`` names it).

Usage: ``.venv/bin/python benchmarks/zip_export.py [--docs 10000] [--small 1000] [--kib 32]
[--keep DIR]``. The last line: ``docs=… docs_per_s=… peak_rss_mib=… peak_rss_mib_1k=… ratio=…
peer=… peer_docs_per_s=… peer_peak_rss_mib=… bundle_mib=…``. Memory is flat when the peak for
10,000 documents is close to the peak for 1,000.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SMALL_ENTERPRISE = "0403170701"
LARGE_ENTERPRISE = "0203201340"
SENDERS = ("FOD Financiën", "SPF Finances", "RSZ / ONSS", "Vlaamse Belastingdienst", "Stad Gent")


def _environment(folder: Path) -> dict[str, str]:
    config = folder / "eboxd.toml"
    config.touch()
    env = {name: value for name, value in os.environ.items() if not name.startswith("EBOXD_")}
    env.update(EBOXD_CONFIG=str(config), EBOXD_DAEMON__DATA_DIR=str(folder / "state"),
               EBOXD_DATABASE__URL=f"sqlite:///{folder / 'state' / 'eboxd.db'}")
    return env


def seed(folder: Path, counts: dict[str, int], kib: int) -> dict[str, list[Path]]:
    """Migrate the database and store ``counts[number]`` documents per enterprise; their files."""
    import sqlalchemy as sa  # noqa: PLC0415

    from daemon.db import create_db_engine, upgrade  # noqa: PLC0415
    from daemon.db.models import Document, Enterprise, Message, PaymentRequest  # noqa: PLC0415
    from daemon.store import FilesystemStore  # noqa: PLC0415

    (folder / "state").mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(f"sqlite:///{folder / 'state' / 'eboxd.db'}")
    upgrade(engine)
    store = FilesystemStore(folder / "state" / "documents")
    staging = store.staging()
    rng = random.Random(7)
    files: dict[str, list[Path]] = {}
    serial = 0
    with engine.begin() as tx:
        for number, count in counts.items():
            enterprise_id = tx.execute(sa.insert(Enterprise).values(number=number, name=f"Enterprise {number}")
                                       .returning(Enterprise.id)).scalar_one()
            files[number] = []
            messages, documents, payments = [], [], []
            for i in range(count):
                serial += 1
                content = b"%PDF-1.7\n" + rng.randbytes(kib * 1024 - 9)
                sha = hashlib.sha256(content).hexdigest()
                (staging / sha).write_bytes(content)
                key = store.put(staging / sha, sha)
                files[number].append(store.root / sha[:2] / sha[2:4] / sha)
                published = dt.datetime(2024, 4, 1, 9, tzinfo=dt.UTC) + dt.timedelta(minutes=13 * i)
                messages.append({"id": serial, "enterprise_id": enterprise_id, "provider_id": "fod",
                                 "ebox_message_id": f"msg-{number}-{i}", "sender": SENDERS[i % len(SENDERS)],
                                 "subject": f"Aanslagbiljet {2024 - i % 3} nr. {i}", "published_at": published,
                                 "fetch_state": "fetched"})
                documents.append({"id": serial, "message_id": serial, "attachment_id": f"att-{i}",
                                  "file_name": f"aanslag {i}.pdf", "media_type": "application/pdf",
                                  "language": "nl", "size": len(content), "sha256": sha, "storage_key": key})
                if i % 3 == 0:
                    payments.append({"enterprise_id": enterprise_id, "message_id": serial, "document_id": serial,
                                     "amount": Decimal(rng.randrange(100, 500_000)) / 100, "currency": "EUR",
                                     "reference": "+++090/9337/55493+++", "status": "open"})
            tx.execute(sa.insert(Message), messages)
            tx.execute(sa.insert(Document), documents)
            tx.execute(sa.insert(PaymentRequest), payments)
    engine.dispose()
    return files


def peak_rss_mib(pid: int | str = "self") -> float:
    """The process's peak resident set (VmHWM). Not ``ru_maxrss``: Linux carries that across
    ``execve``, so a child would report the peak of the benchmark process that spawned it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmHWM in /proc/{pid}/status")


def child(argv: list[str]) -> None:
    """Run one ``eboxd`` command in this process; print its time and this process's peak RSS."""
    from daemon.cli import main  # noqa: PLC0415

    start = time.perf_counter()
    main(argv)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_rss_mib()}))


def ours(env: dict[str, str], number: str, output: Path, expected: int) -> dict[str, float]:
    argv = ["export", "zip", "--enterprise", number, "-o", str(output), "--max-mb", "0", "--no-progress"]
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(argv)], env=env, check=True,
                          capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    with zipfile.ZipFile(output) as bundle:
        if bundle.testzip() is not None:
            raise SystemExit(f"{output}: a corrupt entry")
        pdfs = [name for name in bundle.namelist() if name.endswith(".pdf")]
    if len(pdfs) != expected:
        raise SystemExit(f"{output}: {len(pdfs)} documents in the bundle, expected {expected}")
    return result


def _run_watched(command: list[str], **kwargs: Any) -> tuple[float, float]:
    """Run ``command``; its wall time and peak RSS, read from ``/proc`` until it exits (the peak
    only grows, so the last reading is the peak up to a few milliseconds before the end)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, **kwargs)
    peak = 0.0
    while process.poll() is None:
        with contextlib.suppress(OSError, SystemExit):  # it may exit between poll() and the read
            peak = max(peak, peak_rss_mib(process.pid))
        time.sleep(0.005)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{command[0]} exited with {process.returncode}")
    return seconds, peak


def naive(env: dict[str, str], number: str, output: Path) -> None:
    """The peer without ``zip``: every row at once, every file read whole, ``writestr``."""
    import sqlalchemy as sa  # noqa: PLC0415

    from daemon.db import create_db_engine  # noqa: PLC0415
    from daemon.db.models import Document, Enterprise, Message  # noqa: PLC0415
    from daemon.store import FilesystemStore  # noqa: PLC0415

    state = Path(env["EBOXD_DAEMON__DATA_DIR"])
    engine = create_db_engine(env["EBOXD_DATABASE__URL"])
    store = FilesystemStore(state / "documents")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(Document.sha256, Document.file_name).join(Message).join(Enterprise)
                            .where(Enterprise.number == number)).all()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_STORED) as bundle:
        for sha, name in rows:
            with store.open(f"sha256:{sha}") as source:
                bundle.writestr(f"{sha[:8]}_{name}", source.read())
    print(json.dumps({"peak_rss_mib": peak_rss_mib()}))


def peer(env: dict[str, str], files: list[Path], output: Path, folder: Path) -> tuple[str, float, float]:
    if shutil.which("zip"):
        listing = folder / "zip-list.txt"
        listing.write_text("".join(f"{path}\n" for path in files))
        with listing.open() as names:
            seconds, rss = _run_watched(["zip", "-q", "-0", "-@", str(output)], stdin=names)
        return "zip-0", seconds, rss
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--naive", LARGE_ENTERPRISE, str(output)], env=env,
                          check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start  # includes the interpreter's start-up, unlike ours
    return "naive-writestr", seconds, json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_mib"]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000, help="documents in the large bundle (default 10000)")
    parser.add_argument("--small", type=int, default=1_000, help="documents in the small bundle (default 1000)")
    parser.add_argument("--kib", type=int, default=32, help="size of each document in KiB (default 32)")
    parser.add_argument("--keep", type=Path, help="work in this folder instead of a temporary one")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--naive", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    if args.naive:
        naive(dict(os.environ), args.naive[0], Path(args.naive[1]))
        return
    with tempfile.TemporaryDirectory(prefix="eboxd-zip-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        env = _environment(folder)
        start = time.perf_counter()
        files = seed(folder, {SMALL_ENTERPRISE: args.small, LARGE_ENTERPRISE: args.docs}, args.kib)
        print(f"seeded {args.small + args.docs} documents of {args.kib} KiB in {time.perf_counter() - start:.1f} s",
              flush=True)
        small = ours(env, SMALL_ENTERPRISE, folder / "small.zip", args.small)
        print(f"ours, {args.small} documents: {small['seconds']:.2f} s, {small['peak_rss_mib']:.1f} MiB peak",
              flush=True)
        large = ours(env, LARGE_ENTERPRISE, folder / "large.zip", args.docs)
        print(f"ours, {args.docs} documents: {large['seconds']:.2f} s, {large['peak_rss_mib']:.1f} MiB peak",
              flush=True)
        peer_name, peer_seconds, peer_rss = peer(env, files[LARGE_ENTERPRISE], folder / "peer.zip", folder)
        print(f"{peer_name}, {args.docs} documents: {peer_seconds:.2f} s, {peer_rss:.1f} MiB peak", flush=True)
        docs_per_s = args.docs / large["seconds"]
        peer_per_s = args.docs / peer_seconds
        bundle_mib = (folder / "large.zip").stat().st_size / 2**20
    print(f"docs={args.docs} docs_per_s={docs_per_s:.0f} peak_rss_mib={large['peak_rss_mib']:.1f} "
          f"peak_rss_mib_1k={small['peak_rss_mib']:.1f} ratio={docs_per_s / peer_per_s:.2f} peer={peer_name} "
          f"peer_docs_per_s={peer_per_s:.0f} peer_peak_rss_mib={peer_rss:.1f} bundle_mib={bundle_mib:.0f}")


if __name__ == "__main__":
    main()
