"""``eboxd serve`` wiring: the ponto-syncs job and the webhook route exist only when configured."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from daemon.config import load_config
from daemon.service.daemon import default_jobs, ponto_webhook_routes


def test_ponto_job_and_webhook_route_follow_the_configuration(engine: Engine, tmp_path: Path) -> None:
    off = load_config(environ={})
    assert "ponto-syncs" not in [job.name for job in default_jobs(off)]
    assert ponto_webhook_routes(off, engine) == {}
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    on = load_config(environ={"EBOXD_PONTO__ENABLED": "true", "EBOXD_PONTO__CLIENT_ID": "app",
                              "EBOXD_PONTO__CLIENT_SECRET_FILE": str(secret), "EBOXD_PONTO__CERTIFICATE_FILE": "c",
                              "EBOXD_PONTO__KEY_FILE": "k", "EBOXD_PONTO__WEBHOOK_PATH": "/ponto/webhook"})
    assert "ponto-syncs" in [job.name for job in default_jobs(on)]
    assert list(ponto_webhook_routes(on, engine)) == ["/ponto/webhook"]
