"""The federation's provider registry (FED13): which Document Providers to poll, and which to skip."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import structlog

from ._errors import MalformedResponse
from ._models import TranslatedString
from ._parsing import Fields

__all__ = ["MaintenanceWindow", "MessageProvider", "ProviderSelection", "SkippedProvider", "select_providers"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    start: datetime
    end: datetime

    @classmethod
    def from_json(cls, data: Any, path: str = "MessageProviderPlannedMaintenance") -> MaintenanceWindow:
        f = Fields(data, path)
        return cls(start=f.timestamp("startDate"), end=f.timestamp("endDate"))

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True, slots=True)
class MessageProvider:
    provider_id: str
    name: TranslatedString
    description: TranslatedString
    url: str
    activation_date: date
    technical_contact: str
    api_supported_version: str
    deactivation_date: date | None = None
    planned_maintenance: tuple[MaintenanceWindow, ...] = ()

    @classmethod
    def from_json(cls, data: Any, path: str = "MessageProvider") -> MessageProvider:
        f = Fields(data, path)
        url = f.text("messageProviderUrl")
        if not url.startswith(("http://", "https://")):
            raise MalformedResponse(f"{path}.messageProviderUrl", f"not an http(s) URL: {url!r}")
        return cls(
            provider_id=f.text("messageProviderId"),
            name=f.child("messageProviderName", TranslatedString.from_json),
            description=f.child("messageProviderDescription", TranslatedString.from_json),
            url=url,
            activation_date=f.day("messageProviderActivationDate"),
            technical_contact=f.text("messageProviderTechnicalContact"),
            api_supported_version=f.text("apiSupportedVersion"),
            deactivation_date=f.day("messageProviderDeactivationDate", required=False),
            planned_maintenance=f.array("messageProviderPlannedMaintenance", MaintenanceWindow.from_json),
        )

    def is_active_on(self, day: date) -> bool:
        if day < self.activation_date:
            return False
        return self.deactivation_date is None or day < self.deactivation_date

    def maintenance_at(self, moment: datetime) -> MaintenanceWindow | None:
        return next((w for w in self.planned_maintenance if w.covers(moment)), None)


@dataclass(frozen=True, slots=True)
class SkippedProvider:
    provider: MessageProvider
    reason: str  # "not_yet_active" | "deactivated" | "maintenance" | "unavailable"
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProviderSelection:
    """Providers to poll now, and those skipped with the reason (to report, not to fail on)."""

    usable: tuple[MessageProvider, ...]
    skipped: tuple[SkippedProvider, ...] = field(default=())

    @property
    def in_maintenance(self) -> tuple[SkippedProvider, ...]:
        return tuple(s for s in self.skipped if s.reason == "maintenance")


def select_providers(providers: tuple[MessageProvider, ...], *, now: datetime | None = None) -> ProviderSelection:
    """Keep active providers outside a maintenance window; log and report the others."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    today = moment.date()
    usable: list[MessageProvider] = []
    skipped: list[SkippedProvider] = []
    for provider in providers:
        if today < provider.activation_date:
            skipped.append(SkippedProvider(provider, "not_yet_active"))
        elif not provider.is_active_on(today):
            skipped.append(SkippedProvider(provider, "deactivated"))
        elif (window := provider.maintenance_at(moment)) is not None:
            log.warning(
                "ebox.provider.maintenance",
                provider_id=provider.provider_id,
                until=window.end.isoformat(),
            )
            skipped.append(SkippedProvider(provider, "maintenance", until=window.end))
        else:
            usable.append(provider)
    return ProviderSelection(tuple(usable), tuple(skipped))
