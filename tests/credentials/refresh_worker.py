"""One worker process asking the token store for a fresh token: ``python -m
tests.credentials.refresh_worker '<json>'``. Its "provider" appends each refresh token it is given
to a shared file, so the test sees every refresh made by every process."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time

from daemon.credentials import TokenPair, TokenStore
from daemon.db import create_db_engine
from daemon.secrets import SecretBox


def main(arguments: dict[str, object]) -> None:
    offset = dt.timedelta(seconds=float(arguments["offset"]))  # type: ignore[arg-type]

    def clock() -> dt.datetime:
        return dt.datetime.now(dt.UTC) + offset

    def refresh(refresh_token: str) -> TokenPair:
        fd = os.open(str(arguments["log"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{os.getpid()} {refresh_token}\n".encode())
        finally:
            os.close(fd)
        time.sleep(0.3)  # a slow provider widens the race
        now = clock()
        return TokenPair(f"access-after-{refresh_token}", f"refresh-after-{refresh_token}",
                         now + dt.timedelta(seconds=600), now)

    engine = create_db_engine(str(arguments["database_url"]))
    store = TokenStore(engine, SecretBox([bytes.fromhex(str(arguments["key"]))]), clock=clock)
    time.sleep(max(float(arguments["start_at"]) - time.time(), 0))  # type: ignore[arg-type]
    stored = store.fresh("test", str(arguments["subject"]), refresh, refresh_before=dt.timedelta(seconds=25))
    print(json.dumps({"access_token": stored.pair.access_token, "version": stored.version}))
    engine.dispose()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
