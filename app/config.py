"""Settings: config.yaml's defaults, an optional file over them, then PORTAL_* variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_FILE = PROJECT_ROOT / "config.yaml"
ENV_PREFIX = "PORTAL_"
# Variables with the prefix that are not settings.
RESERVED_ENV = frozenset({"PORTAL_CONFIG", "PORTAL_USER_PASSWORD"})


class ConfigError(Exception):
    """Invalid configuration; the message names every offending key and where it came from."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str
    port: int = Field(ge=1, le=65535)
    header_timeout_seconds: float = Field(gt=0, le=3600)
    body_timeout_seconds: float = Field(gt=0, le=3600)
    drain_seconds: float = Field(ge=0, le=600)
    shutdown_grace_seconds: float = Field(ge=0, le=3600)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    access_log: bool
    format: Literal["text", "json"]


class TracingSettings(_Section):
    enabled: bool
    otlp_endpoint: str = Field(pattern=r"^https?://")
    service_name: str = Field(min_length=1)
    sample_ratio: float = Field(ge=0, le=1)


class MetricsSettings(_Section):
    token: str
    port: int = Field(ge=0, le=65535)
    host: str
    refresh_seconds: float = Field(gt=0, le=3600)


class StorageSettings(_Section):
    adapter: Literal["sqlite", "postgres"]
    sqlite_path: str
    dsn: str = Field(min_length=1)
    pool_min: int = Field(ge=0)
    pool_max: int = Field(ge=1)
    timeout_seconds: float = Field(gt=0)
    auto_migrate: bool

    @model_validator(mode="after")
    def pool_fits(self) -> StorageSettings:
        if self.pool_min > self.pool_max:
            raise ValueError(f"pool_min ({self.pool_min}) is above pool_max ({self.pool_max})")
        return self


class Argon2Settings(_Section):
    time_cost: int = Field(ge=2)
    memory_cost_kib: int = Field(ge=19456)
    parallelism: int = Field(ge=1)


class ThrottleSettings(_Section):
    window_seconds: int = Field(ge=1)
    max_failures_per_account: int = Field(ge=1)
    max_failures_per_address: int = Field(ge=1)


class AuthSettings(_Section):
    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    access_token_ttl: int = Field(ge=10)
    refresh_token_ttl: int = Field(ge=60)
    refresh_absolute_ttl: int = Field(ge=60)
    refresh_grace_seconds: int = Field(ge=0, le=60)
    signing_key_file: str
    password_min_length: int = Field(ge=8, le=128)
    password_token_ttl: int = Field(ge=60)
    password_reset_ttl: int = Field(ge=60)
    password_links_per_hour: int = Field(ge=1)
    argon2: Argon2Settings
    throttle: ThrottleSettings


class ObjectStoreSettings(_Section):
    adapter: Literal["localfs", "s3"]
    endpoint_url: str
    region: str
    access_key_id: str
    secret_access_key: str


class EventBusSettings(_Section):
    adapter: Literal["memory", "redis"]
    url: str = Field(pattern=r"^rediss?://")
    channel: str = Field(min_length=1)


class SmtpSettings(_Section):
    host: str
    port: int = Field(ge=1, le=65535)
    security: Literal["none", "starttls", "tls"]
    username: str
    password: str
    timeout_seconds: float = Field(gt=0, le=300)
    data_timeout_seconds: float = Field(gt=0, le=3600)
    ca_file: str


class MailSettings(_Section):
    adapter: Literal["maildir", "smtp"]
    sender: str = Field(min_length=3)
    outbox_interval: float = Field(ge=0, le=3600)
    max_attempts: int = Field(ge=1, le=100)
    smtp: SmtpSettings


class NotificationSettings(_Section):
    reminder_days: list[Annotated[int, Field(ge=1, le=366)]] = Field(max_length=10)
    reminder_interval: float = Field(ge=0, le=86400)
    expired_lookback_days: int = Field(ge=0, le=366)

    @field_validator("reminder_days", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """From the environment a list comes as "30,7,1"."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class CatalogSettings(_Section):
    scan_interval: int = Field(ge=0)


class DownloadSettings(_Section):
    presign_ttl: int = Field(ge=10, le=7 * 24 * 3600)


class LicensingSettings(_Section):
    signing_key_file: str


class PdfSettings(_Section):
    workers: int = Field(ge=1, le=32)
    warm_on_start: bool
    cache_mb: int = Field(ge=0, le=4096)


class RateLimitSettings(_Section):
    window_seconds: int = Field(ge=1, le=900)
    verify_per_address: int = Field(ge=1)
    feeds_per_address: int = Field(ge=1)
    reports_per_user: int = Field(ge=1)
    archives_per_user: int = Field(ge=1)
    password_links_per_address: int = Field(ge=1)


class ReportSettings(_Section):
    pdf_row_limit: int = Field(ge=1, le=100_000)
    pdf_time_limit_seconds: float = Field(gt=0, le=3600)
    schedule_interval: float = Field(ge=0, le=86400)
    link_ttl_hours: float = Field(gt=0, le=24 * 90)


class PurchaseFeedSettings(_Section):
    secret: str
    tolerance_seconds: int = Field(ge=1, le=3600)


class FeedSettings(_Section):
    purchases: PurchaseFeedSettings


class ResponseTargetSettings(_Section):
    first_response_hours: float = Field(gt=0, le=24 * 365)
    resolution_hours: float = Field(gt=0, le=24 * 365)


class DjangoHelpdeskSettings(_Section):
    url: str = Field(pattern=r"^https?://\S+/$")
    username: str
    password: str
    queue: int = Field(ge=1)
    timeout_seconds: float = Field(gt=0, le=300)
    webhook_secret: str


class SupportSettings(_Section):
    helpdesk: Literal["builtin", "django_helpdesk"]
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    max_attachment_bytes: int = Field(ge=1024, le=10 * 2**30)
    attachment_types: list[Annotated[str, Field(pattern=r"^[a-z0-9]{1,10}$")]]
    sla: dict[str, ResponseTargetSettings]
    delivery_interval: float = Field(ge=0, le=3600)
    max_attempts: int = Field(ge=1, le=1000)
    retry_base_seconds: float = Field(gt=0, le=3600)
    retry_max_seconds: float = Field(gt=0, le=86400)
    reconcile_interval: float = Field(ge=0, le=86400)
    django_helpdesk: DjangoHelpdeskSettings
    feed_secret: str
    # Where customers renew support: an e-mail address or a web address.
    renewal_contact: str = Field(min_length=3, max_length=300)

    @field_validator("attachment_types", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("sla")
    @classmethod
    def _has_default(cls, value: dict[str, ResponseTargetSettings]
                     ) -> dict[str, ResponseTargetSettings]:
        if "default" not in value:
            raise ValueError("needs a `default` level")
        return {level.lower(): targets for level, targets in value.items()}


class WebSettings(_Section):
    secret_key: str
    secure_cookies: bool
    brand_name: str = Field(min_length=1)
    max_body_bytes: int = Field(ge=1024)
    proxy_hops: int = Field(ge=0, le=10)
    trusted_proxies: tuple[str, ...]

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """From the environment a list comes as "10.0.0.0/8,127.0.0.1"."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            ip_network(entry, strict=False)  # a ValueError names the bad entry
        return value


class Settings(_Section):
    data_dir: Path
    base_url: str = Field(pattern=r"^https?://[^/\s]+(/\S*)?$")
    server: ServerSettings
    logging: LoggingSettings
    metrics: MetricsSettings
    tracing: TracingSettings
    storage: StorageSettings
    auth: AuthSettings
    object_store: ObjectStoreSettings
    event_bus: EventBusSettings
    mail: MailSettings
    notifications: NotificationSettings
    catalog: CatalogSettings
    downloads: DownloadSettings
    licensing: LicensingSettings
    pdf: PdfSettings
    reports: ReportSettings
    rate_limits: RateLimitSettings
    feeds: FeedSettings
    support: SupportSettings
    web: WebSettings

    @property
    def sqlite_path(self) -> Path:
        return Path(self.storage.sqlite_path) if self.storage.sqlite_path else (
            self.data_dir / "portal.sqlite3")

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def secure_cookies(self) -> bool:
        return self.web.secure_cookies or self.base_url.startswith("https://")


def load_settings(config_file: str | Path | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read the defaults, the optional file and the environment; ConfigError if invalid."""
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get("PORTAL_CONFIG") or None
    sources: dict[tuple[str, ...], str] = {}
    data = _read_yaml(DEFAULTS_FILE)
    if config_file:
        path = Path(config_file)
        _merge(data, _read_yaml(path), sources, str(path))
    _merge(data, _from_environ(environ), sources, "")
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, sources)) from None
    data_dir = settings.data_dir.expanduser().resolve()
    return settings.model_copy(update={"data_dir": data_dir})


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"the configuration file {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"the configuration file {path} must hold a mapping of settings")
    return loaded


def ignored_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """PORTAL_* variables that name no setting section, which the portal leaves alone:
    orchestrators add some (Kubernetes makes PORTAL_PORT for a Service named portal)."""
    environ = os.environ if environ is None else environ
    return sorted(name for name in environ if _env_path(name) is None
                  and name.startswith(ENV_PREFIX) and name not in RESERVED_ENV)


def _env_path(name: str) -> list[str] | None:
    if not name.startswith(ENV_PREFIX) or name in RESERVED_ENV:
        return None
    path = name[len(ENV_PREFIX):].lower().split("__")
    # A known first part is held to the schema, so typos inside a section are errors.
    return path if path[0] in Settings.model_fields else None


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    overlay: dict[str, Any] = {}
    for name, value in environ.items():
        path = _env_path(name)
        if path is None:
            continue
        node = overlay
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return overlay


def _merge(base: dict[str, Any], overlay: Mapping[str, Any],
           sources: dict[tuple[str, ...], str], origin: str,
           prefix: tuple[str, ...] = ()) -> None:
    for key, value in overlay.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, sources, origin, path)
            continue
        base[key] = value
        sources[path] = origin or ENV_PREFIX + "__".join(path).upper()


def _describe(exc: ValidationError, sources: dict[tuple[str, ...], str]) -> str:
    lines = []
    for error in exc.errors():
        path = tuple(str(part) for part in error["loc"])
        key = ".".join(path)
        origin = next((sources[path[:i]] for i in range(len(path), 0, -1)
                       if path[:i] in sources), None)
        if origin is None:  # a rule over a whole section: name what set its keys
            inside = sorted({src for key_path, src in sources.items()
                             if key_path[:len(path)] == path})
            origin = ", ".join(inside) or str(DEFAULTS_FILE)
        message = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
        message = message.removeprefix("Value error, ")
        lines.append(f"{key} (from {origin}): {message}")
    return "invalid configuration: " + "; ".join(lines)
