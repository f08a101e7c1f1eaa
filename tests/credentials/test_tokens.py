"""The token store on SQLite and PostgreSQL: encrypted and bound to its row, refreshed only when
due, exactly once by 8 concurrent workers (threads, then processes) across an expiry, a refused
refresh token turned into ``needs_reconnect`` rather than a retry loop."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.credentials import (
    NEEDS_RECONNECT,
    NeedsReconnect,
    RefreshRefused,
    RefreshTooEarly,
    TokenPair,
    TokenStore,
    rotate_token_secrets,
)
from daemon.db.models import OAuthToken
from daemon.secrets import SecretBox, SecretError
from tests.conftest import REPO

KEY = b"t" * 32
SUBJECTS = ("host.example/app/user-a", "host.example/app/user-b")  # two connections
REFRESH_BEFORE = dt.timedelta(seconds=25)


class Clock:
    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


class Provider:
    """A provider with single-use refresh tokens: it records each refresh and refuses a spent token."""

    def __init__(self, clock: Clock, delay: float = 0.0) -> None:
        self.clock, self.delay = clock, delay
        self.used: list[str] = []
        self.spent: set[str] = set()
        self._lock = threading.Lock()

    def pair(self, name: str) -> TokenPair:
        now = self.clock.now()
        return TokenPair(f"access-{name}", f"refresh-{name}", now + dt.timedelta(seconds=600), now)

    def refresh(self, refresh_token: str) -> TokenPair:
        with self._lock:
            self.used.append(refresh_token)
            if refresh_token in self.spent:
                raise RefreshRefused("Old refresh token used.")
            self.spent.add(refresh_token)
        time.sleep(self.delay)
        return self.pair(f"{len(self.used)}")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(engine: Engine, clock: Clock) -> TokenStore:
    return TokenStore(engine, SecretBox([KEY]), clock=clock.now)


def test_saved_pair_reads_back_and_is_encrypted_bound_to_its_row(store: TokenStore, engine: Engine,
                                                                  clock: Clock) -> None:
    provider = Provider(clock)
    store.save("test", SUBJECTS[0], provider.pair("a"), details={"division": 1})
    store.save("test", SUBJECTS[1], provider.pair("b"))
    loaded = store.load("test", SUBJECTS[0])
    assert loaded is not None
    assert (loaded.pair.access_token, loaded.pair.refresh_token, loaded.version) == ("access-a", "refresh-a", 1)
    assert loaded.details == {"division": 1}
    assert "access-a" not in repr(loaded)  # never in logs by way of a repr
    with Session(engine) as session:
        rows = {r.subject: r for r in session.scalars(sa.select(OAuthToken))}
    first, second = sorted(rows.values(), key=lambda r: r.id)
    assert b"refresh-a" not in first.token_encrypted
    with engine.begin() as tx:  # another row's blob copied over this one does not decrypt
        tx.execute(sa.update(OAuthToken).where(OAuthToken.id == first.id)
                   .values(token_encrypted=second.token_encrypted))
    with pytest.raises(SecretError, match="does not authenticate"):
        store.load("test", SUBJECTS[0])
    with engine.begin() as tx:  # nor does this row's older blob written back over a newer version
        tx.execute(sa.update(OAuthToken).where(OAuthToken.id == first.id).values(token_encrypted=first.token_encrypted))
    assert store.load("test", SUBJECTS[0]) is not None
    store.save("test", SUBJECTS[0], provider.pair("c"))
    with engine.begin() as tx:
        tx.execute(sa.update(OAuthToken).where(OAuthToken.id == first.id).values(token_encrypted=first.token_encrypted))
    with pytest.raises(SecretError):
        store.load("test", SUBJECTS[0])


def test_refresh_only_when_the_access_token_is_about_to_expire(store: TokenStore, clock: Clock) -> None:
    provider = Provider(clock)
    store.save("test", SUBJECTS[0], provider.pair("a"))
    clock.offset = dt.timedelta(seconds=570)  # 30 s left: not yet
    assert store.fresh("test", SUBJECTS[0], provider.refresh, refresh_before=REFRESH_BEFORE).version == 1
    assert provider.used == []
    clock.offset = dt.timedelta(seconds=576)  # 24 s left: now
    fresh = store.fresh("test", SUBJECTS[0], provider.refresh, refresh_before=REFRESH_BEFORE)
    assert (fresh.version, fresh.pair.access_token) == (2, "access-1")
    assert provider.used == ["refresh-a"]
    assert store.fresh("test", SUBJECTS[0], provider.refresh, refresh_before=REFRESH_BEFORE).version == 2
    assert provider.used == ["refresh-a"]


def test_a_refused_access_token_refreshes_once_when_old_enough_unless_a_peer_already_did(
        store: TokenStore, clock: Clock) -> None:
    provider = Provider(clock)
    store.save("test", SUBJECTS[0], provider.pair("a"))
    earliest = dt.timedelta(seconds=570)
    young = store.fresh("test", SUBJECTS[0], provider.refresh, refresh_before=REFRESH_BEFORE, stale_version=1,
                        earliest_refresh=earliest)
    assert young.version == 1  # the provider would refuse a refresh this early: none is tried
    assert provider.used == []
    clock.offset = dt.timedelta(seconds=571)
    first = store.fresh("test", SUBJECTS[0], provider.refresh, refresh_before=REFRESH_BEFORE, stale_version=1,
                        earliest_refresh=earliest)
    assert first.version == 2
    again = store.fresh("test", SUBJECTS[0], provider.refresh, refresh_before=REFRESH_BEFORE, stale_version=1,
                        earliest_refresh=earliest)
    assert again.version == 2  # version 1 was refused, 2 is newer: use it
    assert provider.used == ["refresh-a"]


def test_too_early_keeps_the_stored_pair(store: TokenStore, clock: Clock) -> None:
    provider = Provider(clock)
    store.save("test", SUBJECTS[0], provider.pair("a"))
    clock.offset = dt.timedelta(seconds=590)

    def too_early(_token: str) -> TokenPair:
        raise RefreshTooEarly("Rate limit exceeded: access_token not expired")

    kept = store.fresh("test", SUBJECTS[0], too_early, refresh_before=REFRESH_BEFORE)
    assert (kept.version, kept.pair.access_token) == (1, "access-a")


def test_a_refused_refresh_token_means_needs_reconnect_and_no_further_attempt(store: TokenStore,
                                                                               clock: Clock) -> None:
    provider = Provider(clock)
    store.save("test", SUBJECTS[0], provider.pair("a"))
    store.save("test", SUBJECTS[1], provider.pair("b"))
    provider.spent.add("refresh-a")  # spent elsewhere
    clock.offset = dt.timedelta(seconds=590)
    with pytest.raises(NeedsReconnect, match=r"test connection host\.example/app/user-a needs reconnecting"):
        store.fresh("test", SUBJECTS[0], provider.refresh, refresh_before=REFRESH_BEFORE)
    stored = store.load("test", SUBJECTS[0])
    assert stored is not None
    assert stored.state == NEEDS_RECONNECT
    with pytest.raises(NeedsReconnect, match="Old refresh token used"):
        store.fresh("test", SUBJECTS[0], provider.refresh, refresh_before=REFRESH_BEFORE)
    assert provider.used == ["refresh-a"]  # asked once, never again
    other = store.load("test", SUBJECTS[1])
    assert other is not None
    assert other.state == "ok"  # other enterprises are not affected
    store.save("test", SUBJECTS[0], provider.pair("c"))  # reconnected
    assert store.fresh("test", SUBJECTS[0], provider.refresh, refresh_before=REFRESH_BEFORE).state == "ok"


def test_eight_threads_across_an_expiry_refresh_exactly_once(store: TokenStore, clock: Clock) -> None:
    provider = Provider(clock, delay=0.3)
    store.save("test", SUBJECTS[0], provider.pair("a"))
    clock.offset = dt.timedelta(seconds=590)
    start = threading.Barrier(8)
    seen: list[str] = []

    def worker() -> None:
        start.wait()
        seen.append(store.fresh("test", SUBJECTS[0], provider.refresh, refresh_before=REFRESH_BEFORE).pair.access_token)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert provider.used == ["refresh-a"]  # one refresh, no reuse
    assert seen == ["access-1"] * 8


def test_eight_processes_across_an_expiry_refresh_exactly_once(store: TokenStore, clock: Clock, database_url: str,
                                                               tmp_path: Path) -> None:
    """Separate processes share only the database: its lock alone must let one of them refresh."""
    store.save("test", SUBJECTS[0], Provider(clock).pair("a"))
    log = tmp_path / "refreshes.log"
    start_at = time.time() + 3
    processes = [subprocess.Popen(
        [sys.executable, "-m", "tests.credentials.refresh_worker", json.dumps({
            "database_url": database_url, "key": KEY.hex(), "subject": SUBJECTS[0], "offset": 590, "log": str(log),
            "start_at": start_at})], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(8)]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    [refresh] = log.read_text().splitlines()  # exactly one refresh, by one process
    assert refresh.endswith(" refresh-a")
    assert {(r["access_token"], r["version"]) for r in results} == {("access-after-refresh-a", 2)}


def test_rotation_re_encrypts_under_the_new_master_key(store: TokenStore, engine: Engine, clock: Clock) -> None:
    store.save("test", SUBJECTS[0], Provider(clock).pair("a"))
    store.save("test", SUBJECTS[1], Provider(clock).pair("b"))
    store.save("test", SUBJECTS[1], Provider(clock).pair("c"))  # version 2: the version stays in the binding
    both = SecretBox([b"n" * 32, KEY])
    with Session(engine) as session, session.begin():
        assert rotate_token_secrets(session, both) == (2, 0)
    with Session(engine) as session, session.begin():
        assert rotate_token_secrets(session, both) == (0, 2)
    rotated = TokenStore(engine, SecretBox([b"n" * 32]), clock=clock.now)
    loaded, other = rotated.load("test", SUBJECTS[0]), rotated.load("test", SUBJECTS[1])
    assert loaded is not None
    assert other is not None
    assert (loaded.pair.refresh_token, other.pair.refresh_token, other.version) == ("refresh-a", "refresh-c", 2)


def test_a_blob_is_bound_to_its_connection_row_even_under_the_same_name(store: TokenStore, engine: Engine,
                                                                        clock: Clock) -> None:
    """A connection forgotten and connected again is a new row: the old row's blob, written back
    with the same name and version, does not decrypt (the row id is in the associated data)."""
    provider = Provider(clock)
    store.save("test", SUBJECTS[0], provider.pair("old"))
    with Session(engine) as session:
        old_blob = session.scalars(sa.select(OAuthToken.token_encrypted)).one()
    assert store.forget("test", SUBJECTS[0])
    assert store.load("test", SUBJECTS[0]) is None
    assert store.save("test", SUBJECTS[0], provider.pair("new")).version == 1
    with engine.begin() as tx:
        tx.execute(sa.update(OAuthToken).values(token_encrypted=old_blob))
    with pytest.raises(SecretError):
        store.load("test", SUBJECTS[0])


def test_reconnecting_replaces_the_shared_pair_and_heals_the_connection(store: TokenStore, clock: Clock) -> None:
    """Every enterprise of a connection reads one row: a new consent (``save``) replaces its pair
    for all of them, and a ``needs_reconnect`` names the connection by its label."""
    provider = Provider(clock)
    label = {"label": "kantoor@example.be on host.example"}
    store.save("test", SUBJECTS[0], provider.pair("a"), details=label)
    provider.spent.add("refresh-a")
    clock.offset = dt.timedelta(seconds=590)
    with pytest.raises(NeedsReconnect, match=r"test connection kantoor@example\.be on host\.example needs reconnecting "
                                             r"\(Old refresh token used\.\)") as refused:
        store.fresh("test", SUBJECTS[0], provider.refresh, refresh_before=REFRESH_BEFORE)
    assert (refused.value.subject, refused.value.label) == (SUBJECTS[0], "kantoor@example.be on host.example")
    renewed = store.save("test", SUBJECTS[0], provider.pair("b"), details=label)
    assert (renewed.version, renewed.state) == (2, "ok")
    fresh = store.fresh("test", SUBJECTS[0], provider.refresh, refresh_before=REFRESH_BEFORE)
    assert (fresh.pair.access_token, fresh.version) == ("access-b", 2)  # the new consent's pair, not refreshed
    described = store.describe("test", SUBJECTS[0])
    assert described is not None
    assert (described.state, described.version, described.pair.access_token) == ("ok", 2, "")  # no secret read
