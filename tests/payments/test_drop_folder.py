"""The CODA drop folder (``daemon.payments.drop_folder``) on both databases: complete files are
imported once and moved, malformed ones rejected with their reason, nothing lost or imported twice
when the process dies between import and move."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from daemon.banking.coda import CodaError, parse_coda
from daemon.banking.coda_writer import MovementSpec, StatementSpec, coda_bytes
from daemon.db import create_db_engine, upgrade
from daemon.db.models import BankTransaction, OutboxRow
from daemon.payments.bank_import import import_coda_file
from daemon.payments.drop_folder import INCOMPLETE_GRACE_SECONDS, RETRY_AFTER_FAILURE_SECONDS, CodaDropFolder
from daemon.workers.tasks import MATCH_PAYMENTS


class Clock:
    """Wall-clock time the folder sees; files get mtimes relative to it."""

    def __init__(self) -> None:
        self.now = 2_000_000_000.0

    def __call__(self) -> float:
        return self.now


def statement_file(*amounts: str, date: dt.date = dt.date(2026, 11, 27)) -> bytes:
    movements = [MovementSpec.ogm(Decimal(a), "010806817183") if i == 0 else
                 MovementSpec(Decimal(a), communication=f"invoice {i}") for i, a in enumerate(amounts)]
    return coda_bytes([StatementSpec(date=date, movements=movements)])


def malformed_file() -> bytes:
    """A valid file whose first movement's amount (line 3, columns 33-47) is letters."""
    lines = statement_file("-12.34").decode("latin-1").splitlines()
    lines[2] = lines[2][:32] + "ABCDEFGHIJKLMNO" + lines[2][47:]
    return ("\n".join(lines) + "\n").encode("latin-1")


def drop(folder: Path, name: str, data: bytes, *, mtime: float) -> Path:
    path = folder / name
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def count(engine: Engine, what: Callable[[], object]) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(what()))  # type: ignore[call-overload]


def transactions(engine: Engine) -> int:
    return count(engine, lambda: select(func.count()).select_from(BankTransaction))


def match_tasks(engine: Engine) -> int:
    return count(engine, lambda: select(func.count()).where(OutboxRow.kind == "task",
                                                            OutboxRow.topic == MATCH_PAYMENTS.actor_name))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    return tmp_path / "coda-in"


@pytest.fixture
def folder(engine: Engine, inbox: Path, clock: Clock) -> CodaDropFolder:
    watched = CodaDropFolder(engine, inbox, settle_seconds=5.0, clock=clock)
    watched.ensure_directories()
    return watched


def test_a_complete_file_is_imported_moved_and_matching_queued(
        folder: CodaDropFolder, engine: Engine, inbox: Path, clock: Clock) -> None:
    data = statement_file("-12.34", "-56.78", "100.00")
    drop(inbox, "kbc-2026-11-27.cod", data, mtime=clock.now - 10)
    (result,) = folder.scan()
    assert result.outcome == "imported"
    assert result.moved_to == inbox / "processed" / "kbc-2026-11-27.cod"
    assert result.moved_to.read_bytes() == data
    assert not (inbox / "kbc-2026-11-27.cod").exists()
    assert transactions(engine) == 3
    assert match_tasks(engine) == 1
    with engine.connect() as conn:
        assert conn.scalar(select(BankTransaction.structured_reference).where(
            BankTransaction.amount == Decimal("-12.34"))) == "010806817183"
    assert folder.scan() == []  # nothing left


def test_files_being_written_are_left_alone_until_complete(
        folder: CodaDropFolder, engine: Engine, inbox: Path, clock: Clock) -> None:
    data = statement_file("-1.00")
    drop(inbox, "upload.cod.part", data, mtime=clock.now - 3600)
    drop(inbox, ".sftp-upload.cod", data, mtime=clock.now - 3600)
    drop(inbox, "~lock.cod", data, mtime=clock.now - 3600)
    fresh = drop(inbox, "fresh.cod", data, mtime=clock.now - 1)  # modified 1 s ago: maybe still growing
    (inbox / "a-directory.cod").mkdir()
    assert folder.scan() == []
    assert transactions(engine) == 0
    clock.now += 5
    (result,) = folder.scan()  # unmodified for 5 s now
    assert (result.name, result.outcome) == ("fresh.cod", "imported")
    assert not fresh.exists()
    (inbox / "upload.cod.part").rename(inbox / "upload.cod")  # the writer's final rename
    (result,) = folder.scan()
    assert (result.name, result.outcome) == ("upload.cod", "duplicate")  # same movements as fresh.cod
    assert sorted(p.name for p in inbox.iterdir()) == [".sftp-upload.cod", "a-directory.cod", "processed",
                                                       "rejected", "~lock.cod"]


def test_oldest_files_first(folder: CodaDropFolder, inbox: Path, clock: Clock) -> None:
    drop(inbox, "b.cod", statement_file("-2.00", date=dt.date(2026, 11, 28)), mtime=clock.now - 100)
    drop(inbox, "a.cod", statement_file("-1.00", date=dt.date(2026, 11, 29)), mtime=clock.now - 50)
    drop(inbox, "c.cod", statement_file("-3.00", date=dt.date(2026, 11, 27)), mtime=clock.now - 200)
    assert [r.name for r in folder.scan()] == ["c.cod", "b.cod", "a.cod"]


def test_malformed_file_is_rejected_with_its_reason_beside_it(
        folder: CodaDropFolder, engine: Engine, inbox: Path, clock: Clock) -> None:
    data = malformed_file()
    with pytest.raises(CodaError) as expected:
        parse_coda(data, name="bad.cod")
    assert (expected.value.line, expected.value.columns) == (3, (33, 47))
    drop(inbox, "bad.cod", data, mtime=clock.now - 10)
    (result,) = folder.scan()
    assert result.outcome == "rejected"
    assert result.moved_to == inbox / "rejected" / "bad.cod"
    assert result.moved_to.read_bytes() == data
    reason = (inbox / "rejected" / "bad.cod.reason.txt").read_text(encoding="utf-8").splitlines()
    assert reason[0] == f"rejected: {expected.value}"
    assert "file: bad.cod" in reason
    assert "line: 3" in reason
    assert "columns: 33-47" in reason
    assert "expected: the amount, 3 implied decimals (15 digits)" in reason
    assert "got: 'ABCDEFGHIJKLMNO'" in reason
    assert f"sha256: {result.sha256}" in reason
    assert transactions(engine) == 0
    assert match_tasks(engine) == 0
    # The same name again (an empty file, long there): the first rejection and its reason stay.
    drop(inbox, "bad.cod", b"", mtime=clock.now - INCOMPLETE_GRACE_SECONDS)
    (again,) = folder.scan()
    assert again.moved_to == inbox / "rejected" / "bad-2.cod"
    assert "line: -" in (inbox / "rejected" / "bad-2.cod.reason.txt").read_text().splitlines()
    assert (inbox / "rejected" / "bad.cod").read_bytes() == data
    assert "line: 3" in (inbox / "rejected" / "bad.cod.reason.txt").read_text().splitlines()


def test_a_file_without_trailer_waits_then_is_rejected(
        folder: CodaDropFolder, engine: Engine, inbox: Path, clock: Clock) -> None:
    """Cut in the middle of line 3 (a writer that paused): not read while it may still grow; once
    unmodified for the grace period, rejected with the parser's reason."""
    data = statement_file("-12.34")[:300]
    drop(inbox, "slow.cod", data, mtime=clock.now - 60)  # settled, but no record 9
    assert folder.scan() == []
    clock.now += INCOMPLETE_GRACE_SECONDS - 60
    (result,) = folder.scan()
    assert result.outcome == "rejected"
    assert "line: 3" in (inbox / "rejected" / "slow.cod.reason.txt").read_text().splitlines()
    assert transactions(engine) == 0


def test_name_collisions_in_processed_keep_every_file(
        folder: CodaDropFolder, engine: Engine, inbox: Path, clock: Clock) -> None:
    first, second = statement_file("-1.00"), statement_file("-1.00", "-2.00")
    drop(inbox, "coda", first, mtime=clock.now - 10)  # no suffix
    drop(inbox, "daily.cod", first, mtime=clock.now - 10)
    assert {r.outcome for r in folder.scan()} == {"imported", "duplicate"}
    drop(inbox, "daily.cod", second, mtime=clock.now - 10)
    (result,) = folder.scan()
    assert result.outcome == "imported"  # one new movement
    drop(inbox, "daily.cod", first, mtime=clock.now - 10)
    drop(inbox, "coda", first, mtime=clock.now - 10)
    assert {r.outcome for r in folder.scan()} == {"duplicate"}
    processed = inbox / "processed"
    assert sorted(p.name for p in processed.iterdir()) == ["coda", "coda-2", "daily-2.cod", "daily-3.cod",
                                                           "daily.cod"]
    assert (processed / "daily-2.cod").read_bytes() == second
    assert (processed / "daily-3.cod").read_bytes() == first
    assert transactions(engine) == 2
    # Matching is queued once per import that stored something new.
    assert match_tasks(engine) == 2


def test_killed_between_import_and_move_imports_again_harmlessly(
        folder: CodaDropFolder, engine: Engine, inbox: Path, clock: Clock) -> None:
    """What a crash leaves: the import committed (rows and the matching task, one transaction),
    the file still in the folder. The next scan imports it again without effect and moves it."""
    path = drop(inbox, "statement.cod", statement_file("-1.00", "-2.00"), mtime=clock.now - 10)
    before_crash = import_coda_file(engine, path, name=path.name)  # exactly the call the folder makes
    assert before_crash.inserted == 2
    (result,) = CodaDropFolder(engine, inbox, settle_seconds=5.0, clock=clock).scan()  # the restarted daemon
    assert result.outcome == "duplicate"
    assert result.moved_to == inbox / "processed" / "statement.cod"
    assert not path.exists()
    assert transactions(engine) == 2
    assert match_tasks(engine) == 1


@pytest.mark.parametrize("destination", ["processed", "rejected"])
def test_killed_in_the_middle_of_the_move_leaves_one_copy(
        folder: CodaDropFolder, inbox: Path, clock: Clock, destination: str) -> None:
    """The move links first and unlinks last: a crash in between leaves the file in both places.
    The next scan recognises the link instead of making a second copy under another name."""
    data = statement_file("-1.00") if destination == "processed" else malformed_file()
    path = drop(inbox, "statement.cod", data, mtime=clock.now - 10)
    os.link(path, inbox / destination / "statement.cod")  # the crash came after this
    (result,) = folder.scan()
    assert result.moved_to == inbox / destination / "statement.cod"
    assert not path.exists()
    assert [p.name for p in (inbox / destination).iterdir() if not p.name.endswith(".reason.txt")] == \
        ["statement.cod"]
    if destination == "rejected":
        assert (inbox / "rejected" / "statement.cod.reason.txt").exists()


def test_database_failure_keeps_the_file_and_retries_later(tmp_path: Path, clock: Clock) -> None:
    """Not the file's fault (here: a database without its schema yet): the file stays, is not
    tried again at every scan, and is imported once the database is there."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'not-migrated.db'}")
    try:
        inbox = tmp_path / "in"
        watched = CodaDropFolder(engine, inbox, settle_seconds=0, clock=clock)
        watched.ensure_directories()
        path = drop(inbox, "statement.cod", statement_file("-1.00"), mtime=clock.now - 10)
        (result,) = watched.scan()
        assert result.outcome == "failed"
        assert "no such table" in result.detail
        assert path.exists()
        assert watched.scan() == []  # not before the retry delay
        upgrade(engine)
        clock.now += RETRY_AFTER_FAILURE_SECONDS
        (result,) = watched.scan()
        assert result.outcome == "imported"
        assert not path.exists()
        assert transactions(engine) == 1
    finally:
        engine.dispose()


def test_a_changed_file_is_retried_at_once_after_a_failure(tmp_path: Path, clock: Clock) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        inbox = tmp_path / "in"
        watched = CodaDropFolder(engine, inbox, settle_seconds=0, clock=clock)
        watched.ensure_directories()
        drop(inbox, "statement.cod", statement_file("-1.00"), mtime=clock.now - 10)
        assert [r.outcome for r in watched.scan()] == ["failed"]
        upgrade(engine)
        drop(inbox, "statement.cod", statement_file("-1.00", "-2.00"), mtime=clock.now - 5)  # replaced
        assert [r.outcome for r in watched.scan()] == ["imported"]
    finally:
        engine.dispose()
