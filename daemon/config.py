"""Configuration: one TOML file, overridable by ``EBOXD_<SECTION>__<KEY>`` environment variables.

Every key, its type, default and bounds are declared here once; ``config/eboxd.example.toml``
documents them and a test keeps the two in step. Validation happens at start and names the file,
line and key that is wrong.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.errors import ConfigError

__all__ = [
    "BrokerConfig",
    "Config",
    "DaemonConfig",
    "DatabaseConfig",
    "DocumentsConfig",
    "EboxConfig",
    "LoggingConfig",
    "OutboxConfig",
    "PollConfig",
    "SecretsConfig",
    "ServiceConfig",
    "WorkerConfig",
    "load_config",
]

ENV_PREFIX = "EBOXD_"
ENV_CONFIG_FILE = "EBOXD_CONFIG"
DEFAULT_CONFIG_FILE = Path("/etc/eboxd/eboxd.toml")


def _bounded(minimum: float | None = None, maximum: float | None = None, **kw: Any) -> Any:
    return field(metadata={"min": minimum, "max": maximum}, **kw)


def _choice(*choices: str, default: str) -> Any:
    return field(default=default, metadata={"choices": choices})


@dataclass(frozen=True)
class DaemonConfig:
    data_dir: str = ""  # empty: $STATE_DIRECTORY under systemd, else ./var
    node_name: str = ""  # empty: the host name


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = ""  # empty: sqlite:///<data_dir>/eboxd.db
    busy_timeout_seconds: float = _bounded(0.1, 600, default=10.0)
    pool_size: int = _bounded(1, 200, default=5)
    echo: bool = False


@dataclass(frozen=True)
class BrokerConfig:
    url: str = "amqp://guest:guest@127.0.0.1:5672/"
    heartbeat_seconds: int = _bounded(0, 600, default=15)
    blocked_connection_timeout_seconds: int = _bounded(1, 3600, default=60)
    connect_timeout_seconds: float = _bounded(0.1, 120, default=5.0)
    events_exchange: str = "eboxd.events"


@dataclass(frozen=True)
class OutboxConfig:
    batch_size: int = _bounded(1, 10_000, default=500)
    idle_interval_seconds: float = _bounded(0.01, 60, default=0.5)
    confirm_timeout_seconds: float = _bounded(0.1, 300, default=30.0)
    max_backoff_seconds: float = _bounded(1, 3600, default=300.0)
    retention_days: int = _bounded(0, 3650, default=7)


@dataclass(frozen=True)
class WorkerConfig:
    processes: int = _bounded(1, 64, default=2)
    threads: int = _bounded(1, 256, default=8)
    queues: tuple[str, ...] = ()  # empty: every queue
    shutdown_timeout_seconds: int = _bounded(1, 3600, default=60)
    max_retries: int = _bounded(0, 1000, default=10)
    min_backoff_seconds: float = _bounded(0.1, 1200, default=15.0)
    # RabbitMQ closes channels holding a delivery unacked for 30 minutes, and dramatiq holds
    # delayed retries unacked: keep every wait well under that.
    max_backoff_seconds: float = _bounded(1, 1200, default=900.0)
    time_limit_seconds: float = _bounded(1, 1200, default=600.0)


@dataclass(frozen=True)
class ServiceConfig:
    http_host: str = "127.0.0.1"
    http_port: int = _bounded(0, 65535, default=9187)
    loop_interval_seconds: float = _bounded(0.05, 60, default=1.0)


@dataclass(frozen=True)
class LoggingConfig:
    level: str = _choice("debug", "info", "warning", "error", default="info")
    format: str = _choice("auto", "json", "console", default="auto")


@dataclass(frozen=True)
class EboxConfig:
    environment: str = _choice("sandbox", "acceptance", "production", "simulation", "custom", default="sandbox")
    sandbox_url: str = "http://127.0.0.1:8790"
    token_url: str = ""  # overrides; required for "custom"
    registry_url: str = ""
    provider_registry_url: str = ""
    audience: str = ""
    on_behalf_of_header: str = "On-Behalf-Of-Enterprise-Number"
    key_size: int = _bounded(2048, 8192, default=3072)
    certificate_days: int = _bounded(1, 3650, default=730)
    timeout_seconds: float = _bounded(1, 300, default=30.0)


@dataclass(frozen=True)
class PollConfig:
    interval_seconds: float = _bounded(30, 86_400, default=900.0)
    jitter_seconds: float = _bounded(0, 3600, default=60.0)
    max_backoff_seconds: float = _bounded(60, 86_400, default=3600.0)
    # A claimed poll not finished within this is given to another worker (a worker died).
    lease_seconds: float = _bounded(60, 7200, default=900.0)
    # Polls claimed per scheduler round and node.
    claim_batch: int = _bounded(1, 10_000, default=500)
    # Listing starts this many days before the newest receipt date seen (the filter has day precision).
    overlap_days: int = _bounded(1, 30, default=2)
    # Read/visible state of messages received in this window is refreshed at every poll.
    refresh_days: int = _bounded(0, 365, default=14)
    page_size: int = _bounded(1, 100, default=100)


@dataclass(frozen=True)
class DocumentsConfig:
    store: str = _choice("filesystem", "database", default="filesystem")
    directory: str = ""  # empty: <data_dir>/documents
    # Never download main content, so the enterprise's staff still see their messages unread.
    metadata_only: bool = False
    # Hide messages in the e-Box web view once eboxd has stored them.
    hide_after_processing: bool = False
    max_size_mb: int = _bounded(1, 2048, default=100)
    # A fetch still failing after dramatiq's retries is queued again this long after its last failure.
    refetch_after_seconds: float = _bounded(1, 7 * 86_400, default=7200.0)


@dataclass(frozen=True)
class BankingConfig:
    # A bank movement with the amount and IBAN of a payment request but no reference is a candidate
    # (suggested, or paid if match_confidence_threshold allows) when booked within this many days
    # of its due date (else its creation).
    match_window_days: int = _bounded(1, 366, default=60)
    # Folder `eboxd serve` imports CODA files from (empty: off); relative to [daemon] data_dir.
    coda_drop_dir: str = ""
    # A file in it is read once unmodified for this long (names ending .part or starting with a dot never).
    coda_drop_settle_seconds: float = _bounded(0, 3600, default=5.0)
    # be.eboxd.payment.due_soon is emitted this many days before an open request's due date.
    due_soon_days: int = _bounded(0, 90, default=5)
    # A match marks a document paid only at or above this confidence (0.5–1): an exact OGM/RF scores
    # 1.0; amount + IBAN at most 0.85 (on the due date), so by default a person confirms those.
    match_confidence_threshold: float = _bounded(0.5, 1.0, default=0.9)


@dataclass(frozen=True)
class PontoConfig:
    enabled: bool = False
    api_url: str = "https://api.ibanity.com/ponto-connect"
    authorize_url: str = "https://sandbox-authorization.myponto.com/oauth2/auth"
    webhook_keys_url: str = "https://api.ibanity.com/webhooks/keys"
    client_id: str = ""
    client_secret_file: str = ""  # a file holding the client secret (never in this file)
    certificate_file: str = ""  # mTLS client certificate (PEM) from the Ibanity portal
    key_file: str = ""  # its private key (PEM)
    ca_file: str = ""  # extra CA bundle to trust (the sandbox's); empty: the system's
    redirect_uri: str = "http://127.0.0.1:8781/callback"
    scope: str = "offline_access ai name"
    sync_interval_seconds: float = _bounded(3600, 7 * 86_400, default=21_600.0)
    sync_timeout_seconds: float = _bounded(1, 3600, default=120.0)
    overlap_days: int = _bounded(0, 90, default=7)
    page_limit: int = _bounded(1, 100, default=100)
    timeout_seconds: float = _bounded(1, 300, default=30.0)
    webhook_path: str = ""  # e.g. /ponto/webhook on [service] http_host:http_port; empty: off
    webhook_issuer: str = "https://api.ibanity.com"
    webhook_max_age_seconds: float = _bounded(1, 600, default=30.0)


@dataclass(frozen=True)
class SecretsConfig:
    key_file: str = ""  # empty: $CREDENTIALS_DIRECTORY/eboxd-master-key, else <data_dir>/master.key


@dataclass(frozen=True)
class Config:
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    ebox: EboxConfig = field(default_factory=EboxConfig)
    poll: PollConfig = field(default_factory=PollConfig)
    documents: DocumentsConfig = field(default_factory=DocumentsConfig)
    banking: BankingConfig = field(default_factory=BankingConfig)
    ponto: PontoConfig = field(default_factory=PontoConfig)
    secrets: SecretsConfig = field(default_factory=SecretsConfig)
    source: str = "defaults"

    @property
    def data_dir(self) -> Path:
        if self.daemon.data_dir:
            return Path(self.daemon.data_dir).expanduser()
        if state := os.environ.get("STATE_DIRECTORY"):
            return Path(state.split(":")[0])
        return Path("var").absolute()

    @property
    def documents_dir(self) -> Path:
        return Path(self.documents.directory).expanduser() if self.documents.directory else self.data_dir / "documents"

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir / 'eboxd.db'}"


def sections() -> dict[str, type]:
    """Section name → dataclass, in file order."""
    return {f.name: f.default_factory for f in dataclasses.fields(Config) if f.name != "source"}  # type: ignore[misc]


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file (explicit ``path``, else ``$EBOXD_CONFIG``, else /etc/eboxd/eboxd.toml if
    present, else defaults), apply environment overrides and validate everything."""
    environ = os.environ if environ is None else environ
    chosen = path or environ.get(ENV_CONFIG_FILE)
    if chosen is None and DEFAULT_CONFIG_FILE.exists():
        chosen = DEFAULT_CONFIG_FILE
    raw: dict[str, Any] = {}
    text = ""
    source = "defaults"
    if chosen is not None:
        file = Path(chosen)
        source = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read configuration file: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            line = exc.object[: exc.start].count(b"\n") + 1
            raise ConfigError(f"{file}:{line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                              f"{exc.start}); save it as UTF-8") from None
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: invalid TOML: {exc}") from None
    where = _Locator(source, text)
    values = _validate_file(raw, where)
    _apply_environment(values, environ)
    built = {name: cls(**values.get(name, {})) for name, cls in sections().items()}
    config = Config(**built, source=source)
    _check_together(config, where)
    return config


def _check_together(config: Config, where: _Locator) -> None:
    """Settings that are only wrong in combination."""
    if config.poll.lease_seconds <= config.worker.time_limit_seconds:
        raise ConfigError(
            f"{where('poll', 'lease_seconds')}: [poll] lease_seconds ({config.poll.lease_seconds:g}) must be longer "
            f"than [worker] time_limit_seconds ({config.worker.time_limit_seconds:g}), or a poll outliving its "
            "lease could be claimed again and run twice at once")


class _Locator:
    """Finds the line of ``key`` inside ``[section]`` so errors can point at it."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.lines = text.splitlines()

    def __call__(self, section: str, key: str | None = None) -> str:
        current = ""
        for number, line in enumerate(self.lines, start=1):
            stripped = line.strip()
            if stripped.startswith("[") and stripped.endswith("]"):
                current = stripped.strip("[] ")
                if key is None and current == section:
                    return f"{self.source}:{number}"
            elif key is not None and current == section and stripped.split("=", 1)[0].strip() == key:
                return f"{self.source}:{number}"
        return self.source


def _validate_file(raw: dict[str, Any], where: _Locator) -> dict[str, dict[str, Any]]:
    known = sections()
    values: dict[str, dict[str, Any]] = {}
    for section, content in raw.items():
        if section not in known:
            raise ConfigError(f"{where(section)}: unknown section [{section}]{_suggest(section, known)}")
        if not isinstance(content, dict):
            raise ConfigError(f"{where(section)}: '{section}' must be a [section] table")
        fields = {f.name: f for f in dataclasses.fields(known[section])}
        for key, value in content.items():
            if key not in fields:
                raise ConfigError(
                    f"{where(section, key)}: unknown key [{section}] {key}{_suggest(key, fields)}"
                )
            label = f"{where(section, key)}: [{section}] {key}"
            values.setdefault(section, {})[key] = _coerce(value, fields[key], known[section], label)
    return values


def _apply_environment(values: dict[str, dict[str, Any]], environ: Mapping[str, str]) -> None:
    known = sections()
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if section not in known:
            raise ConfigError(f"environment {name}: unknown section '{section}'{_suggest(section, known)}")
        fields = {f.name: f for f in dataclasses.fields(known[section])}
        if key not in fields:
            raise ConfigError(f"environment {name}: unknown key [{section}] {key}{_suggest(key, fields)}")
        label = f"environment {name}"
        value = _parse_env_value(text, _field_type(known[section], key), label)
        values.setdefault(section, {})[key] = _coerce(value, fields[key], known[section], label)


def _field_type(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def _parse_env_value(text: str, wanted: Any, label: str) -> Any:
    if wanted is bool:
        lowered = text.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{label}: expected a boolean (true/false), got {text!r}")
    if wanted is int or wanted is float:
        try:
            return int(text) if wanted is int else float(text)
        except ValueError:
            kind = "an integer" if wanted is int else "a number"
            raise ConfigError(f"{label}: expected {kind}, got {text!r}") from None
    if typing.get_origin(wanted) is tuple:
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def _coerce(value: Any, spec: dataclasses.Field[Any], cls: type, label: str) -> Any:
    value = _coerce_type(value, _field_type(cls, spec.name), label)
    low, high = spec.metadata.get("min"), spec.metadata.get("max")
    if low is not None and value < low:
        raise ConfigError(f"{label}: must be at least {low:g}, got {value!r}")
    if high is not None and value > high:
        raise ConfigError(f"{label}: must be at most {high:g}, got {value!r}")
    choices = spec.metadata.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{label}: must be one of {', '.join(choices)}; got {value!r}")
    return value


def _coerce_type(value: Any, wanted: Any, label: str) -> Any:
    if wanted is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{label}: expected true or false, got {value!r}")
    elif wanted is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{label}: expected an integer, got {value!r}")
    elif wanted is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{label}: expected a number, got {value!r}")
        value = float(value)
    elif wanted is str:
        if not isinstance(value, str):
            raise ConfigError(f"{label}: expected a string, got {value!r}")
    elif typing.get_origin(wanted) is tuple:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{label}: expected a list of strings, got {value!r}")
        value = tuple(value)
    return value


def _suggest(name: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
