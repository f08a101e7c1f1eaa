"""What a worker process shares for talking to the e-Box: one connection pool, one token cache
(tokens are reused across polls until shortly before they expire) and the provider list."""

from __future__ import annotations

import threading
import time

import httpx
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from daemon import ebox
from daemon.config import Config
from daemon.db.models import Enterprise
from daemon.enterprises import ebox_environment, open_client, open_client_by_id
from daemon.secrets import SecretBox
from daemon.tls import client_context

__all__ = ["EboxAccess"]

PROVIDERS_TTL_SECONDS = 300.0


class EboxAccess:
    def __init__(self, config: Config, secrets: SecretBox) -> None:
        self.config = config
        self.secrets = secrets
        self.environment = ebox_environment(config)
        self.http = httpx.Client(timeout=config.ebox.timeout_seconds, verify=client_context("ebox"),
                                 limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))
        self.tokens = ebox.TokenProvider(self.environment, http_client=self.http)
        self._providers: tuple[ebox.MessageProvider, ...] | None = None
        self._providers_at = 0.0
        self._lock = threading.Lock()

    def client(self, session: Session, enterprise: Enterprise) -> ebox.EboxClient:
        return open_client(session, self.config, self.secrets, enterprise, token_provider=self.tokens,
                           http_client=self.http)

    def client_by_id(self, conn: Connection, enterprise_id: int) -> ebox.EboxClient:
        return open_client_by_id(conn, self.config, self.secrets, enterprise_id, token_provider=self.tokens,
                                 http_client=self.http)

    def providers(self, client: ebox.EboxClient) -> tuple[ebox.MessageProvider, ...]:
        """The provider registry, fetched at most every five minutes per process: it is the same
        for every enterprise."""
        with self._lock:
            if self._providers is None or time.monotonic() - self._providers_at > PROVIDERS_TTL_SECONDS:
                self._providers = client.list_providers()
                self._providers_at = time.monotonic()
            return self._providers

    def close(self) -> None:
        self.tokens.close()
        self.http.close()
