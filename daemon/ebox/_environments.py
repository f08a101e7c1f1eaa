"""Where the token endpoint, the Message Registry and the provider registry live (ebox.md §2)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ._errors import UnknownEnvironment

__all__ = ["KNOWN_ENVIRONMENTS", "Environment", "resolve_environment"]

_PRD = "https://services.socialsecurity.be/REST"
_ACC = "https://services-acpt.socialsecurity.be/REST"

# Paths below a sandbox base URL; they mirror the production layout under ``/REST``.
SANDBOX_TOKEN_PATH = "/REST/oauth/v5/token"
SANDBOX_REGISTRY_PATH = "/REST/ebox/enterprise/messageRegistry/v2/"
SANDBOX_PROVIDERS_PATH = "/REST/ebox/enterprise/federation/v1/messageProviders"


@dataclass(frozen=True, slots=True)
class Environment:
    """One e-Box environment.

    ``registry_url`` is the Message Registry base URL (contract paths such as ``ebox/messages`` are
    appended to it); ``provider_registry_url`` is the full URL of ``GET /messageProviders``;
    ``audience`` overrides the client assertion's ``aud`` (default: the token URL).
    """

    name: str
    token_url: str
    registry_url: str
    provider_registry_url: str | None = None
    audience: str | None = None

    def __post_init__(self) -> None:
        for attr in ("token_url", "registry_url", "provider_registry_url"):
            value = getattr(self, attr)
            if value is not None and not value.startswith(("http://", "https://")):
                raise UnknownEnvironment(f"{self.name}: {attr} must be an http(s) URL, got {value!r}")
        if not self.registry_url.endswith("/"):
            object.__setattr__(self, "registry_url", self.registry_url + "/")

    @property
    def assertion_audience(self) -> str:
        """The ``aud`` claim of client assertions."""
        return self.audience or self.token_url


KNOWN_ENVIRONMENTS: dict[str, Environment] = {
    "production": Environment(
        name="production",
        token_url=f"{_PRD}/oauth/v5/token",
        registry_url=f"{_PRD}/ebox/enterprise/messageRegistry/v2/",
        provider_registry_url=f"{_PRD}/ebox/enterprise/federation/v1/messageProviders",
    ),
    "acceptance": Environment(
        name="acceptance",
        token_url=f"{_ACC}/oauth/v5/token",
        registry_url=f"{_ACC}/ebox/enterprise/messageRegistry/v2/",
        provider_registry_url=f"{_ACC}/ebox/enterprise/federation/v1/messageProviders",
    ),
    # Simulation: the NSSO consultation test registry (a v3 path) with the production token server.
    "simulation": Environment(
        name="simulation",
        token_url=f"{_PRD}/oauth/v5/token",
        registry_url="https://services-sim.socialsecurity.be/REST/ebox/enterprise/messageRegistry/"
        "consultationIntegrationTest/v3/",
        provider_registry_url=None,
    ),
}


def resolve_environment(
    name: str = "production",
    *,
    base_url: str | None = None,
    token_url: str | None = None,
    registry_url: str | None = None,
    provider_registry_url: str | None = None,
    audience: str | None = None,
) -> Environment:
    """Build an :class:`Environment` from a name and optional overrides.

    - ``"production"`` / ``"acceptance"`` / ``"simulation"``: the published URLs; any explicit URL
      given overrides the matching one.
    - ``"sandbox"``: needs ``base_url`` (e.g. ``http://127.0.0.1:8800``); paths mirror production.
    - ``"custom"`` (or any other name): needs ``token_url`` and ``registry_url``.
    """
    key = name.strip().lower()
    if key in ("prd", "prod"):
        key = "production"
    elif key in ("acc", "acpt"):
        key = "acceptance"
    if key == "sandbox":
        if not base_url:
            raise UnknownEnvironment("the sandbox environment needs base_url (e.g. http://127.0.0.1:8800)")
        root = base_url.rstrip("/")
        env = Environment(
            name="sandbox",
            token_url=root + SANDBOX_TOKEN_PATH,
            registry_url=root + SANDBOX_REGISTRY_PATH,
            provider_registry_url=root + SANDBOX_PROVIDERS_PATH,
        )
    elif key in KNOWN_ENVIRONMENTS:
        if base_url:
            raise UnknownEnvironment(f"base_url only applies to the sandbox, not to {key}")
        env = KNOWN_ENVIRONMENTS[key]
    else:
        if not token_url or not registry_url:
            raise UnknownEnvironment(
                f"unknown environment {name!r}: use production, acceptance, simulation, sandbox, "
                "or give token_url and registry_url explicitly"
            )
        return Environment(key, token_url, registry_url, provider_registry_url, audience)
    overrides = {
        k: v
        for k, v in {
            "token_url": token_url,
            "registry_url": registry_url,
            "provider_registry_url": provider_registry_url,
            "audience": audience,
        }.items()
        if v
    }
    return replace(env, **overrides) if overrides else env
