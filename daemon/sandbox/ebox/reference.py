"""Static reference data of the sandbox: document providers, sender organizations,
sender applications and message types, in the Message Registry v2.1 field names.

NSSO follows its documented habits (empty cross-link arrays, ebox.md §7); the second provider
("fedfin", an FPS Finance-like DP, inferred) fills all of them and all three languages.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "KIND_INFO",
    "MESSAGE_TYPES",
    "PROVIDERS",
    "SENDER_APPLICATIONS",
    "SENDER_ORGANIZATIONS",
    "ProviderInfo",
    "logo_png",
]

NSSO_CBE = "0206731645"
FIN_CBE = "0308357159"


@dataclass(frozen=True)
class ProviderInfo:
    """A Document Provider as listed by the provider registry (FED13 ``MessageProvider``)."""

    provider_id: str
    base_path: str
    """Path of its Message Registry on the sandbox host (no trailing slash)."""
    name: dict[str, str]
    description: dict[str, str]
    activation_date: str
    deactivation_date: str | None = None
    api_version: str = "2.1"
    contact: str = "eboxintegration@smals.be"
    served: bool = True
    """False for listed-but-gone providers (their paths answer 404)."""
    multilingual: bool = False
    """NSSO messages carry one language; other DPs fill all three (ebox.md §4)."""
    extra: dict[str, Any] = field(default_factory=dict)


PROVIDERS: tuple[ProviderInfo, ...] = (
    ProviderInfo(
        "nsso",
        "/REST/ebox/enterprise/messageRegistry/v2",
        {"nl": "RSZ", "fr": "ONSS", "de": "LSS", "en": "NSSO"},
        {
            "nl": "Rijksdienst voor Sociale Zekerheid",
            "fr": "Office national de sécurité sociale",
            "de": "Landesamt für soziale Sicherheit",
            "en": "National Social Security Office",
        },
        "2017-12-01",
    ),
    ProviderInfo(
        "fedfin",
        "/REST/fedfin/ebox/enterprise/messageRegistry/v2",
        {"nl": "FOD Financiën", "fr": "SPF Finances", "de": "FÖD Finanzen", "en": "FPS Finance"},
        {
            "nl": "Federale Overheidsdienst Financiën (sandbox)",
            "fr": "Service public fédéral Finances (sandbox)",
            "de": "Föderaler Öffentlicher Dienst Finanzen (sandbox)",
            "en": "Federal Public Service Finance (sandbox)",
        },
        "2019-03-01",
        multilingual=True,
    ),
    ProviderInfo(
        "legacy",
        "/REST/legacy/ebox/enterprise/messageRegistry/v1",
        {"nl": "Oude DP", "fr": "Ancien DP", "de": "Alter DP", "en": "Legacy DP"},
        {"nl": "Gedeactiveerd", "fr": "Désactivé", "de": "Deaktiviert", "en": "Deactivated"},
        "2016-01-01",
        deactivation_date="2020-12-31",
        api_version="1.6",
        served=False,
    ),
)

SENDER_ORGANIZATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "nsso": {
        NSSO_CBE: {
            "organizationId": NSSO_CBE,
            "organizationShortName": {"nl": "RSZ", "fr": "ONSS", "de": "LSS"},
            "organizationLongName": {
                "nl": "Rijksdienst voor Sociale Zekerheid",
                "fr": "Office national de sécurité sociale",
                "de": "Landesamt für soziale Sicherheit",
            },
            "organizationUrl": {"nl": "https://www.rsz.be", "fr": "https://www.onss.be", "de": "https://www.lss.be"},
            "organizationLogos": [],
            "senderApplicationIds": [],
            "messageTypeIds": [],
            "contactBusiness": "contact@onssrszlss.fgov.be",
        },
    },
    "fedfin": {
        FIN_CBE: {
            "organizationId": FIN_CBE,
            "organizationShortName": {"nl": "FOD Financiën", "fr": "SPF Finances", "de": "FÖD Finanzen"},
            "organizationLongName": {
                "nl": "Federale Overheidsdienst Financiën",
                "fr": "Service public fédéral Finances",
                "de": "Föderaler Öffentlicher Dienst Finanzen",
            },
            "organizationUrl": {
                "nl": "https://financien.belgium.be/nl",
                "fr": "https://finances.belgium.be/fr",
                "de": "https://finanzen.belgium.be/de",
            },
            "organizationLogos": [{"imageId": "fin-logo", "mediaType": "image/png", "language": "fr"}],
            "senderApplicationIds": ["fin-myminfin"],
            "messageTypeIds": ["FIN-TAX-ASSESSMENT", "FIN-VAT-STATEMENT", "FIN-INFO-REQUEST"],
            "contactBusiness": "0257 257 57",
            "contactTechnical": "servicedesk.sandbox@example.invalid",
        },
    },
}

SENDER_APPLICATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "nsso": {
        "nsso-collection": {
            "applicationId": "nsso-collection",
            "applicationName": {"nl": "Inning bijdragen", "fr": "Perception des cotisations", "de": "Beitragserhebung"},
            "applicationLogos": [],
            "senderOrganizationIds": [],
            "messageTypeIds": [],
        },
        "nsso-attest": {
            "applicationId": "nsso-attest",
            "applicationName": {"nl": "Attesten", "fr": "Attestations", "de": "Bescheinigungen"},
            "applicationLogos": [],
            "senderOrganizationIds": [],
            "messageTypeIds": [],
        },
    },
    "fedfin": {
        "fin-myminfin": {
            "applicationId": "fin-myminfin",
            "applicationName": {"nl": "MyMinfin", "fr": "MyMinfin", "de": "MyMinfin"},
            "applicationDescription": {
                "nl": "Persoonlijk dossier bij de FOD Financiën",
                "fr": "Dossier personnel auprès du SPF Finances",
                "de": "Persönliche Akte beim FÖD Finanzen",
            },
            "applicationLogos": [{"imageId": "myminfin-logo", "mediaType": "image/png"}],
            "applicationUrl": dict.fromkeys(("nl", "fr", "de"), "https://eservices.minfin.fgov.be"),
            "senderOrganizationIds": [FIN_CBE],
            "messageTypeIds": ["FIN-TAX-ASSESSMENT", "FIN-VAT-STATEMENT", "FIN-INFO-REQUEST"],
        },
    },
}


def _message_type(type_id: str, names: tuple[str, str, str], months: int, provider: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "messageTypeId": type_id,
        "messageTypeName": {"nl": names[0], "fr": names[1], "de": names[2]},
        "validityPeriod": {"validityPeriodNumber": months, "validityPeriodUnit": "month"},
    }
    if provider == "nsso":
        entry.update(senderOrganizationIds=[], senderApplicationIds=[])
    else:
        entry.update(senderOrganizationIds=[FIN_CBE], senderApplicationIds=["fin-myminfin"])
    return entry


MESSAGE_TYPES: dict[str, dict[str, dict[str, Any]]] = {
    "nsso": {
        t["messageTypeId"]: t
        for t in (
            _message_type("NSSO-CONTRIBUTIONS", ("Betalingsbericht", "Avis de paiement", "Zahlungsaufforderung"), 18,
                          "nsso"),
            _message_type("NSSO-REMINDER", ("Herinnering", "Rappel", "Erinnerung"), 18, "nsso"),
            _message_type("NSSO-ATTESTATION", ("Attest", "Attestation", "Bescheinigung"), 24, "nsso"),
        )
    },
    "fedfin": {
        t["messageTypeId"]: t
        for t in (
            _message_type("FIN-TAX-ASSESSMENT", ("Aanslagbiljet", "Avertissement-extrait de rôle", "Steuerbescheid"),
                          24, "fedfin"),
            _message_type("FIN-VAT-STATEMENT", ("Btw-rekeninguittreksel", "Relevé TVA", "MwSt.-Kontoauszug"),
                          18, "fedfin"),
            _message_type("FIN-INFO-REQUEST", ("Vraag om inlichtingen", "Demande de renseignements",
                                               "Auskunftsersuchen"), 24, "fedfin"),
        )
    },
}

KIND_INFO: dict[str, tuple[str, str, str]] = {
    # kind -> (provider, messageTypeId, senderApplicationId)
    "contributions": ("nsso", "NSSO-CONTRIBUTIONS", "nsso-collection"),
    "reminder": ("nsso", "NSSO-REMINDER", "nsso-collection"),
    "attestation": ("nsso", "NSSO-ATTESTATION", "nsso-attest"),
    "tax_assessment": ("fedfin", "FIN-TAX-ASSESSMENT", "fin-myminfin"),
    "vat_statement": ("fedfin", "FIN-VAT-STATEMENT", "fin-myminfin"),
    "information_request": ("fedfin", "FIN-INFO-REQUEST", "fin-myminfin"),
}
"""Which provider, message type and application publish each kind of letter."""

SENDER_OF_PROVIDER = {"nsso": NSSO_CBE, "fedfin": FIN_CBE}


def logo_png() -> bytes:
    """A valid 1x1 PNG (a blue pixel) served as every logo's content."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00\x33\x99")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
