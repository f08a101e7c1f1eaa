"""e-Box Enterprise DocConsumer client (Message Registry v2.1, OAuth v5 ``private_key_jwt``).

Import from here, never from the private modules::

    from daemon import ebox

    env = ebox.resolve_environment("sandbox", base_url="http://127.0.0.1:8800")
    identity = ebox.generate_identity("ACME NV", "0403.170.701")   # upload identity.certificate_pem()
    credential = ebox.Credential.from_identity("<client id from ChaMan>", identity)
    with ebox.EboxClient(credential, env) as client:
        for message in client.iter_messages(ebox.MessageQuery(read_status=False)):
            ...
"""

from __future__ import annotations

from ._assertion import build_client_assertion
from ._cbe import EnterpriseNumber, parse_enterprise_number
from ._certificates import (
    DEFAULT_KEY_SIZE,
    MIN_KEY_SIZE,
    ClientIdentity,
    build_subject,
    create_csr,
    create_self_signed_certificate,
    generate_identity,
    generate_private_key,
    load_certificate,
    load_private_key,
    private_key_to_pkcs8,
    public_key_fingerprint,
    verify_certificate_matches_key,
)
from ._client import ON_BEHALF_OF_HEADER, EboxClient
from ._credentials import Credential
from ._download import DownloadResult
from ._environments import KNOWN_ENVIRONMENTS, Environment, resolve_environment
from ._errors import (
    AttachmentNotFound,
    BadRequest,
    CertificateError,
    CertificateKeyMismatch,
    DigestMismatch,
    DownloadError,
    EboxApiError,
    EboxConnectionError,
    EboxError,
    EboxTimeout,
    Forbidden,
    InvalidClientAssertion,
    InvalidEnterpriseNumber,
    InvalidScope,
    MalformedResponse,
    NotFound,
    RateLimited,
    ServerError,
    SizeMismatch,
    StatusMessage,
    TokenEndpointError,
    TokenError,
    TransportError,
    TruncatedDownload,
    Unauthorized,
    UnauthorizedClient,
    UnknownClient,
    UnknownEnvironment,
    UnsupportedMediaType,
    WeakKey,
)
from ._messages import MAX_PAGE_SIZE, MessageQuery
from ._models import (
    Attachment,
    BusinessData,
    Digest,
    EboxSummary,
    ForTheAttentionOf,
    Message,
    Page,
    PaymentData,
    TranslatedString,
)
from ._providers import MaintenanceWindow, MessageProvider, ProviderSelection, SkippedProvider, select_providers
from ._reference import Image, MessageType, ReferenceCache, SenderApplication, SenderOrganization, ValidityPeriod
from ._tokens import DOCCONSUMER_SCOPE, REGISTRY_SCOPE, AccessToken, TokenProvider
from ._transport import RetryPolicy

__all__ = [
    "DEFAULT_KEY_SIZE",
    "DOCCONSUMER_SCOPE",
    "KNOWN_ENVIRONMENTS",
    "MAX_PAGE_SIZE",
    "MIN_KEY_SIZE",
    "ON_BEHALF_OF_HEADER",
    "REGISTRY_SCOPE",
    "AccessToken",
    "Attachment",
    "AttachmentNotFound",
    "BadRequest",
    "BusinessData",
    "CertificateError",
    "CertificateKeyMismatch",
    "ClientIdentity",
    "Credential",
    "Digest",
    "DigestMismatch",
    "DownloadError",
    "DownloadResult",
    "EboxApiError",
    "EboxClient",
    "EboxConnectionError",
    "EboxError",
    "EboxSummary",
    "EboxTimeout",
    "EnterpriseNumber",
    "Environment",
    "ForTheAttentionOf",
    "Forbidden",
    "Image",
    "InvalidClientAssertion",
    "InvalidEnterpriseNumber",
    "InvalidScope",
    "MaintenanceWindow",
    "MalformedResponse",
    "Message",
    "MessageProvider",
    "MessageQuery",
    "MessageType",
    "NotFound",
    "Page",
    "PaymentData",
    "ProviderSelection",
    "RateLimited",
    "ReferenceCache",
    "RetryPolicy",
    "SenderApplication",
    "SenderOrganization",
    "ServerError",
    "SizeMismatch",
    "SkippedProvider",
    "StatusMessage",
    "TokenEndpointError",
    "TokenError",
    "TokenProvider",
    "TranslatedString",
    "TransportError",
    "TruncatedDownload",
    "Unauthorized",
    "UnauthorizedClient",
    "UnknownClient",
    "UnknownEnvironment",
    "UnsupportedMediaType",
    "ValidityPeriod",
    "WeakKey",
    "build_client_assertion",
    "build_subject",
    "create_csr",
    "create_self_signed_certificate",
    "generate_identity",
    "generate_private_key",
    "load_certificate",
    "load_private_key",
    "parse_enterprise_number",
    "private_key_to_pkcs8",
    "public_key_fingerprint",
    "resolve_environment",
    "select_providers",
    "verify_certificate_matches_key",
]
