"""One worker process calling Ponto when the stored access token is about to expire:
``python -m tests.ponto.refresh_worker '<json>'``. Prints the token version it used."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time

from daemon.banking.ponto import PontoClient, PontoSettings
from daemon.credentials import TokenStore
from daemon.db import create_db_engine
from daemon.secrets import SecretBox


def main(arguments: dict[str, object]) -> None:
    offset = dt.timedelta(seconds=float(arguments["offset"]))  # type: ignore[arg-type]
    engine = create_db_engine(str(arguments["database_url"]))
    store = TokenStore(engine, SecretBox([bytes.fromhex(str(arguments["key"]))]),
                       clock=lambda: dt.datetime.now(dt.UTC) + offset)
    settings = PontoSettings(**arguments["settings"])  # type: ignore[arg-type]
    time.sleep(max(float(arguments["start_at"]) - time.time(), 0))  # type: ignore[arg-type]
    with PontoClient(settings, store, str(arguments["subject"])) as client:
        accounts = client.accounts()
        version = client.tokens().version
    print(json.dumps({"accounts": len(accounts), "version": version}))
    engine.dispose()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
