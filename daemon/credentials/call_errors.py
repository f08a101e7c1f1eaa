"""Providers' error answers, shared by every worker process through the database.

A provider may block a key after a number of error answers an hour (Exact: more than 10). Each
process counting its own would let N processes make N times as many; this log is what they all
count before calling (``recent``) and add to after an error answer (``record``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, delete, insert, select

from daemon.db.models import ProviderCallError

__all__ = ["CallErrorLog"]

KEEP = dt.timedelta(hours=2)


class CallErrorLog:
    """The error answers of one provider key (``key``: e.g. host, app and division)."""

    def __init__(self, engine: Engine, provider: str, key: str) -> None:
        self.engine, self.provider, self.key = engine, provider, key
        self._reader = engine.execution_options(sqlite_readonly=True)

    def __repr__(self) -> str:
        return f"<CallErrorLog {self.provider} {self.key}>"

    def record(self, at: dt.datetime, *, endpoint: str = "", status: int = 0) -> None:
        with self.engine.begin() as tx:
            tx.execute(insert(ProviderCallError).values(provider=self.provider, key=self.key,
                                                        endpoint=endpoint[:200], status=status, occurred_at=at))
            tx.execute(delete(ProviderCallError).where(ProviderCallError.provider == self.provider,
                                                       ProviderCallError.key == self.key,
                                                       ProviderCallError.occurred_at < at - KEEP))

    def since(self, at: dt.datetime) -> list[dt.datetime]:
        """When the errors after ``at`` occurred, oldest first."""
        with self._reader.connect() as conn:
            return list(conn.scalars(select(ProviderCallError.occurred_at).where(
                ProviderCallError.provider == self.provider, ProviderCallError.key == self.key,
                ProviderCallError.occurred_at > at).order_by(ProviderCallError.occurred_at)))
