"""What an installation needs to talk to Ponto: the ``[ponto]`` settings, the client secret read
from its file, and the mTLS context (client certificate, server verification always on)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from daemon.config import Config, PontoConfig
from daemon.errors import ConfigError
from daemon.tls import client_context

__all__ = ["PROVIDER", "PontoSettings"]

PROVIDER = "ponto"


@dataclass(frozen=True)
class PontoSettings:
    api_url: str
    authorize_url: str
    webhook_keys_url: str
    client_id: str
    client_secret: str = field(repr=False)
    certificate_file: str
    key_file: str
    ca_file: str = ""
    redirect_uri: str = "http://127.0.0.1:8781/callback"
    scope: str = "offline_access ai name"
    timeout_seconds: float = 30.0
    page_limit: int = 100
    sync_timeout_seconds: float = 120.0
    overlap_days: int = 7
    webhook_issuer: str = "https://api.ibanity.com"
    webhook_max_age_seconds: float = 30.0

    @classmethod
    def from_config(cls, config: Config | PontoConfig) -> PontoSettings:
        ponto = config.ponto if isinstance(config, Config) else config
        missing = [name for name in ("client_id", "client_secret_file", "certificate_file", "key_file")
                   if not getattr(ponto, name)]
        if missing:
            raise ConfigError(f"[ponto] needs {', '.join(missing)}")
        try:
            secret = Path(ponto.client_secret_file).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"[ponto] client_secret_file: cannot read: {exc.strerror}") from None
        return cls(api_url=ponto.api_url.rstrip("/"), authorize_url=ponto.authorize_url,
                   webhook_keys_url=ponto.webhook_keys_url, client_id=ponto.client_id, client_secret=secret,
                   certificate_file=ponto.certificate_file, key_file=ponto.key_file, ca_file=ponto.ca_file,
                   redirect_uri=ponto.redirect_uri, scope=ponto.scope, timeout_seconds=ponto.timeout_seconds,
                   page_limit=ponto.page_limit, sync_timeout_seconds=ponto.sync_timeout_seconds,
                   overlap_days=ponto.overlap_days, webhook_issuer=ponto.webhook_issuer,
                   webhook_max_age_seconds=ponto.webhook_max_age_seconds)

    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the server (the public CAs plus ``ca_file``: :mod:`daemon.tls`) and presents the client certificate.
        httpx ≥ 0.28 wants this as ``verify=`` instead of ``cert=``."""
        context = client_context("ponto", ca_file=self.ca_file)  # an extra CA is logged there
        try:
            context.load_cert_chain(str(Path(self.certificate_file).expanduser()),
                                    str(Path(self.key_file).expanduser()))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"[ponto] certificate_file/key_file: cannot load: {exc}") from None
        return context
