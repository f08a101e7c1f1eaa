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
from daemon.db.models import Enterprise, OAuthToken
from daemon.secrets import SecretBox, SecretError
from tests.conftest import REPO

KEY = b"t" * 32
NUMBERS = ("0123456749", "0403170701")
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
    with Session(engine) as session, session.begin():
        session.add_all([Enterprise(number=number, name=f"E {number}") for number in NUMBERS])
    return TokenStore(engine, SecretBox([KEY]), clock=clock.now)


def test_saved_pair_reads_back_and_is_encrypted_bound_to_its_row(store: TokenStore, engine: Engine,
                                                                  clock: Clock) -> None:
    provider = Provider(clock)
    store.save(NUMBERS[0], "test", provider.pair("a"), details={"division": 1})
    store.save(NUMBERS[1], "test", provider.pair("b"))
    loaded = store.load(NUMBERS[0], "test")
    assert loaded is not None
    assert (loaded.pair.access_token, loaded.pair.refresh_token, loaded.version) == ("access-a", "refresh-a", 1)
    assert loaded.details == {"division": 1}
    assert "access-a" not in repr(loaded)  # never in logs by way of a repr
    with Session(engine) as session:
        rows = {r.enterprise_id: r for r in session.scalars(sa.select(OAuthToken))}
    first, second = sorted(rows.values(), key=lambda r: r.id)
    assert b"refresh-a" not in first.token_encrypted
    with engine.begin() as tx:  # another row's blob copied over this one does not decrypt
        tx.execute(sa.update(OAuthToken).where(OAuthToken.id == first.id)
                   .values(token_encrypted=second.token_encrypted))
    with pytest.raises(SecretError, match="does not authenticate"):
        store.load(NUMBERS[0], "test")
    with engine.begin() as tx:  # nor does this row's older blob written back over a newer version
        tx.execute(sa.update(OAuthToken).where(OAuthToken.id == first.id).values(token_encrypted=first.token_encrypted))
    assert store.load(NUMBERS[0], "test") is not None
    store.save(NUMBERS[0], "test", provider.pair("c"))
    with engine.begin() as tx:
        tx.execute(sa.update(OAuthToken).where(OAuthToken.id == first.id).values(token_encrypted=first.token_encrypted))
    with pytest.raises(SecretError):
        store.load(NUMBERS[0], "test")


def test_refresh_only_when_the_access_token_is_about_to_expire(store: TokenStore, clock: Clock) -> None:
    provider = Provider(clock)
    store.save(NUMBERS[0], "test", provider.pair("a"))
    clock.offset = dt.timedelta(seconds=570)  # 30 s left: not yet
    assert store.fresh(NUMBERS[0], "test", provider.refresh, refresh_before=REFRESH_BEFORE).version == 1
    assert provider.used == []
    clock.offset = dt.timedelta(seconds=576)  # 24 s left: now
    fresh = store.fresh(NUMBERS[0], "test", provider.refresh, refresh_before=REFRESH_BEFORE)
    assert (fresh.version, fresh.pair.access_token) == (2, "access-1")
    assert provider.used == ["refresh-a"]
    assert store.fresh(NUMBERS[0], "test", provider.refresh, refresh_before=REFRESH_BEFORE).version == 2
    assert provider.used == ["refresh-a"]


def test_a_refused_access_token_refreshes_once_when_old_enough_unless_a_peer_already_did(
        store: TokenStore, clock: Clock) -> None:
    provider = Provider(clock)
    store.save(NUMBERS[0], "test", provider.pair("a"))
    earliest = dt.timedelta(seconds=570)
    young = store.fresh(NUMBERS[0], "test", provider.refresh, refresh_before=REFRESH_BEFORE, stale_version=1,
                        earliest_refresh=earliest)
    assert young.version == 1  # the provider would refuse a refresh this early: none is tried
    assert provider.used == []
    clock.offset = dt.timedelta(seconds=571)
    first = store.fresh(NUMBERS[0], "test", provider.refresh, refresh_before=REFRESH_BEFORE, stale_version=1,
                        earliest_refresh=earliest)
    assert first.version == 2
    again = store.fresh(NUMBERS[0], "test", provider.refresh, refresh_before=REFRESH_BEFORE, stale_version=1,
                        earliest_refresh=earliest)
    assert again.version == 2  # version 1 was refused, 2 is newer: use it
    assert provider.used == ["refresh-a"]


def test_too_early_keeps_the_stored_pair(store: TokenStore, clock: Clock) -> None:
    provider = Provider(clock)
    store.save(NUMBERS[0], "test", provider.pair("a"))
    clock.offset = dt.timedelta(seconds=590)

    def too_early(_token: str) -> TokenPair:
        raise RefreshTooEarly("Rate limit exceeded: access_token not expired")

    kept = store.fresh(NUMBERS[0], "test", too_early, refresh_before=REFRESH_BEFORE)
    assert (kept.version, kept.pair.access_token) == (1, "access-a")


def test_a_refused_refresh_token_means_needs_reconnect_and_no_further_attempt(store: TokenStore,
                                                                               clock: Clock) -> None:
    provider = Provider(clock)
    store.save(NUMBERS[0], "test", provider.pair("a"))
    store.save(NUMBERS[1], "test", provider.pair("b"))
    provider.spent.add("refresh-a")  # spent elsewhere
    clock.offset = dt.timedelta(seconds=590)
    with pytest.raises(NeedsReconnect, match="needs reconnecting for enterprise 0123456749"):
        store.fresh(NUMBERS[0], "test", provider.refresh, refresh_before=REFRESH_BEFORE)
    stored = store.load(NUMBERS[0], "test")
    assert stored is not None
    assert stored.state == NEEDS_RECONNECT
    with pytest.raises(NeedsReconnect, match="Old refresh token used"):
        store.fresh(NUMBERS[0], "test", provider.refresh, refresh_before=REFRESH_BEFORE)
    assert provider.used == ["refresh-a"]  # asked once, never again
    other = store.load(NUMBERS[1], "test")
    assert other is not None
    assert other.state == "ok"  # other enterprises are not affected
    store.save(NUMBERS[0], "test", provider.pair("c"))  # reconnected
    assert store.fresh(NUMBERS[0], "test", provider.refresh, refresh_before=REFRESH_BEFORE).state == "ok"


def test_eight_threads_across_an_expiry_refresh_exactly_once(store: TokenStore, clock: Clock) -> None:
    provider = Provider(clock, delay=0.3)
    store.save(NUMBERS[0], "test", provider.pair("a"))
    clock.offset = dt.timedelta(seconds=590)
    start = threading.Barrier(8)
    seen: list[str] = []

    def worker() -> None:
        start.wait()
        seen.append(store.fresh(NUMBERS[0], "test", provider.refresh, refresh_before=REFRESH_BEFORE).pair.access_token)

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
    store.save(NUMBERS[0], "test", Provider(clock).pair("a"))
    log = tmp_path / "refreshes.log"
    start_at = time.time() + 3
    processes = [subprocess.Popen(
        [sys.executable, "-m", "tests.credentials.refresh_worker", json.dumps({
            "database_url": database_url, "key": KEY.hex(), "number": NUMBERS[0], "offset": 590, "log": str(log),
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
    store.save(NUMBERS[0], "test", Provider(clock).pair("a"))
    both = SecretBox([b"n" * 32, KEY])
    with Session(engine) as session, session.begin():
        assert rotate_token_secrets(session, both) == (1, 0)
    with Session(engine) as session, session.begin():
        assert rotate_token_secrets(session, both) == (0, 1)
    loaded = TokenStore(engine, SecretBox([b"n" * 32]), clock=clock.now).load(NUMBERS[0], "test")
    assert loaded is not None
    assert loaded.pair.refresh_token == "refresh-a"
