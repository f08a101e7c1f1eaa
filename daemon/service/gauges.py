"""Gauges that ``eboxd serve`` reads from the database: enterprises and certificate expiry.

Every node refreshes its own copy (the values are facts about shared data, so alert rules take the
``min``/``max`` across nodes); this is not a scheduled job, which only one node would run.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Gauge
from sqlalchemy import Engine, func, select

from daemon import metrics
from daemon.db.models import Credential, Enterprise

__all__ = ["CredentialGauges", "refresh_credential_gauges"]


@dataclass(frozen=True)
class CredentialGauges:
    enterprises_enabled: int
    enterprises_disabled: int
    certificates: int


def refresh_credential_gauges(engine: Engine) -> CredentialGauges:
    """Set ``eboxd_enterprises`` and ``eboxd_certificate_expiry_timestamp_seconds`` from the database.

    Series of enterprises that were removed, disabled or lost their certificate are dropped, so an
    expired certificate nobody uses any more stops alerting.
    """
    with engine.connect() as conn:
        counts = dict(conn.execute(select(Enterprise.enabled, func.count()).group_by(Enterprise.enabled)).all())
        rows = conn.execute(
            select(Enterprise.number, Credential.kind, Credential.certificate_not_after)
            .join(Credential, Credential.enterprise_id == Enterprise.id)
            .where(Enterprise.enabled.is_(True), Credential.certificate_not_after.is_not(None))
        ).all()
    enabled, disabled = int(counts.get(True, 0)), int(counts.get(False, 0))
    metrics.ENTERPRISES.labels(state="enabled").set(enabled)
    metrics.ENTERPRISES.labels(state="disabled").set(disabled)

    gauge = metrics.CERTIFICATE_EXPIRY
    current = {(number, kind): not_after.timestamp() for number, kind, not_after in rows if not_after is not None}
    for labels in _label_sets(gauge) - set(current):
        gauge.remove(*labels)
    for (number, kind), expires_at in current.items():
        gauge.labels(enterprise=number, kind=kind).set(expires_at)
    return CredentialGauges(enabled, disabled, len(current))


def _label_sets(gauge: Gauge) -> set[tuple[str, str]]:
    return {
        (sample.labels["enterprise"], sample.labels["kind"])
        for family in gauge.collect() for sample in family.samples
    }
