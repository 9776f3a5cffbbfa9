"""The composition root: the only module that chooses and builds adapters."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dependency_injector import containers, providers

from adapters.argon2 import Argon2PasswordHasher
from adapters.builtin_helpdesk import BuiltinHelpdesk
from adapters.jwcrypto import (
    InvalidLicenseFile,
    JwcryptoLicenseSigner,
    JwcryptoTokenCodec,
    KeyFileError,
    load_signing_key,
    new_signing_key,
    read_key_file,
    verify_license_file,
    write_key_file,
)
from adapters.localfs import LocalObjectStore
from adapters.maildir import MaildirMailer
from adapters.memory import InProcessEventBus, LruBlobCache
from adapters.sql import tracing as sql_tracing
from adapters.sqlite import SqliteStorage
from adapters.system import SystemClock, Uuid7Ids, load_secret
from adapters.weasyprint import WeasyPrintRenderer
from adapters.xlsxwriter import XlsxSpreadsheets
from app.config import PROJECT_ROOT, Settings
from app.domain.reminders import ReminderPolicy
from app.domain.support import ResponseTargets, SlaPolicy
from app.services import Services
from app.services.audit_log import AuditLogService
from app.services.auth import AuthPolicy, AuthService
from app.services.cabinets import CabinetService
from app.services.catalog import CatalogService
from app.services.conversation import ConversationService
from app.services.documents import DocumentService, PrintPolicy
from app.services.downloads import DownloadService
from app.services.helpdesk_sync import HelpdeskSync, SyncPolicy
from app.services.issuing import IssuingService
from app.services.licensing import LicensingService
from app.services.limits import LimitPolicy, RateLimits
from app.services.mail import EmailComposer, MailPolicy, OutboxPolicy, OutboxWorker
from app.services.notifications import NotificationService
from app.services.notifier import Notifier
from app.services.purchases import FeedPolicy, PurchaseService
from app.services.releases import ReleaseService
from app.services.reminders import ReminderService
from app.services.reports import ReportPolicy, ReportService
from app.services.subscriptions import ReportSubscriptions, SubscriptionPolicy
from app.services.support import SupportPolicy, SupportService
from app.services.users import UserPolicy, UserService
from app.services.work import Transactions

if TYPE_CHECKING:
    from adapters.django_helpdesk import DjangoHelpdesk
    from adapters.postgres import PostgresStorage
    from adapters.redis import RedisEventBus
    from adapters.s3 import S3ObjectStore


async def _opened(resource: SqliteStorage | PostgresStorage | WeasyPrintRenderer
                  | LocalObjectStore | S3ObjectStore | InProcessEventBus | RedisEventBus
                  | BuiltinHelpdesk | DjangoHelpdesk) -> AsyncIterator[Any]:
    await resource.open()
    try:
        yield resource
    finally:
        await resource.close()


def trace_sql(tracer: Any) -> None:
    """Each SQL statement a span of `tracer` (None: no spans): app.tracing's switch."""
    sql_tracing.TRACER = tracer


def _lazy(module: str, name: str) -> Callable[..., Any]:
    """An adapter imported only when configured: PostgreSQL, Redis, S3, SMTP and
    django-helpdesk weigh some 20 MB that the embedded defaults never use."""
    def make(**settings: Any) -> Any:
        return getattr(importlib.import_module(module), name)(**settings)
    return make


_postgres = _lazy("adapters.postgres", "PostgresStorage")
_redis_bus = _lazy("adapters.redis", "RedisEventBus")
_smtp = _lazy("adapters.smtp", "SmtpMailer")
_django_helpdesk = _lazy("adapters.django_helpdesk", "DjangoHelpdesk")
_s3 = _lazy("adapters.s3", "S3ObjectStore")


def _token_codec(key_file: str, generated: Path, issuer: str,
                 audience: str) -> JwcryptoTokenCodec:
    key = load_signing_key(Path(key_file) if key_file else None, generated)
    return JwcryptoTokenCodec(key, issuer, audience)


def _license_signer(key_file: str, generated: Path) -> JwcryptoLicenseSigner:
    return JwcryptoLicenseSigner(load_signing_key(Path(key_file) if key_file else None,
                                                  generated))


def _sla(levels: dict[str, dict[str, float]]) -> SlaPolicy:
    targets = {level: ResponseTargets(timedelta(hours=values["first_response_hours"]),
                                      timedelta(hours=values["resolution_hours"]))
               for level, values in levels.items()}
    return SlaPolicy(levels=targets, fallback=targets["default"])


def _web_secret(configured: str, generated: Path) -> bytes:
    return configured.encode() if configured else load_secret(generated)


class Container(containers.DeclarativeContainer):
    config = providers.Configuration(strict=True)

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(Uuid7Ids)
    event_bus = providers.Resource(_opened, providers.Selector(
        config.event_bus.adapter, memory=providers.Singleton(InProcessEventBus),
        redis=providers.Singleton(_redis_bus, url=config.event_bus.url,
                                  channel=config.event_bus.channel)))

    storage_adapter = providers.Selector(
        config.storage.adapter,
        sqlite=providers.Singleton(SqliteStorage, path=config.paths.sqlite,
                                   busy_timeout_ms=config.paths.sqlite_busy_timeout_ms),
        postgres=providers.Singleton(
            _postgres, dsn=config.storage.dsn, pool_min=config.storage.pool_min,
            pool_max=config.storage.pool_max, timeout_seconds=config.storage.timeout_seconds),
    )
    storage = providers.Resource(_opened, storage_adapter)

    password_hasher = providers.Singleton(
        Argon2PasswordHasher, time_cost=config.auth.argon2.time_cost,
        memory_cost_kib=config.auth.argon2.memory_cost_kib,
        parallelism=config.auth.argon2.parallelism)
    token_codec = providers.Singleton(
        _token_codec, key_file=config.auth.signing_key_file,
        generated=config.paths.signing_key, issuer=config.auth.issuer,
        audience=config.auth.audience)
    web_secret = providers.Singleton(_web_secret, configured=config.web.secret_key,
                                     generated=config.paths.web_secret)

    auth_policy = providers.Singleton(
        AuthPolicy, access_ttl=config.auth.access_token_ttl,
        refresh_ttl=config.auth.refresh_token_ttl,
        absolute_ttl=config.auth.refresh_absolute_ttl,
        throttle_window=config.auth.throttle.window_seconds,
        max_account_failures=config.auth.throttle.max_failures_per_account,
        max_address_failures=config.auth.throttle.max_failures_per_address,
        refresh_grace=config.auth.refresh_grace_seconds)
    user_policy = providers.Singleton(
        UserPolicy, password_min_length=config.auth.password_min_length,
        password_token_ttl=config.auth.password_token_ttl, base_url=config.base_url,
        password_reset_ttl=config.auth.password_reset_ttl,
        password_links_per_hour=config.auth.password_links_per_hour)

    composer = providers.Singleton(EmailComposer, policy=providers.Singleton(
        MailPolicy, sender=config.mail.sender, base_url=config.base_url,
        brand=config.web.brand_name, templates=config.paths.templates))
    notifier = providers.Singleton(Notifier, clock=clock, ids=ids, composer=composer)
    # Every use case's unit of work: its events become notifications before it commits and
    # are published once it has.
    work = providers.Singleton(Transactions, storage=storage, publisher=event_bus,
                               prepare=notifier.provided.prepare)
    basics = {"work": work, "clock": clock, "ids": ids}

    auth = providers.Singleton(AuthService, **basics, hasher=password_hasher,
                               tokens=token_codec, policy=auth_policy)
    cabinets = providers.Singleton(CabinetService, **basics)
    users = providers.Singleton(UserService, **basics, hasher=password_hasher,
                                policy=user_policy, composer=composer)

    catalog = providers.Singleton(CatalogService, **basics)
    notifications = providers.Singleton(NotificationService, **basics, notifier=notifier)
    reminders = providers.Singleton(
        ReminderService, work=work, clock=clock, notifier=notifier,
        policy=providers.Singleton(
            ReminderPolicy,
            days_before=providers.Callable(tuple, config.notifications.reminder_days),
            lookback_days=config.notifications.expired_lookback_days))
    licensing = providers.Singleton(LicensingService, **basics)

    renderer = providers.Resource(_opened, providers.Singleton(
        WeasyPrintRenderer, templates_dir=config.paths.templates, workers=config.pdf.workers,
        warm=config.pdf.warm_on_start))
    document_cache = providers.Singleton(
        LruBlobCache, max_bytes=providers.Callable(lambda mb: mb * 1024 * 1024,
                                                   config.pdf.cache_mb))
    license_signer = providers.Singleton(
        _license_signer, key_file=config.licensing.signing_key_file,
        generated=config.paths.license_key)
    documents = providers.Singleton(
        DocumentService, licensing=licensing, renderer=renderer, cache=document_cache,
        signer=license_signer, clock=clock,
        policy=providers.Singleton(PrintPolicy, brand=config.web.brand_name,
                                   base_url=config.base_url))

    mailer = providers.Selector(
        config.mail.adapter,
        maildir=providers.Singleton(MaildirMailer, folder=config.paths.mail),
        smtp=providers.Singleton(
            _smtp, host=config.mail.smtp.host, port=config.mail.smtp.port,
            security=config.mail.smtp.security, username=config.mail.smtp.username,
            password=config.mail.smtp.password,
            timeout_seconds=config.mail.smtp.timeout_seconds, ca_file=config.mail.smtp.ca_file,
            data_timeout_seconds=config.mail.smtp.data_timeout_seconds))

    outbox = providers.Singleton(
        OutboxWorker, storage=storage, mailer=mailer, clock=clock, sender=config.mail.sender,
        policy=providers.Singleton(OutboxPolicy, max_attempts=config.mail.max_attempts))

    object_store = providers.Resource(_opened, providers.Selector(
        config.object_store.adapter,
        localfs=providers.Singleton(LocalObjectStore, root=config.paths.objects),
        s3=providers.Singleton(
            _s3, endpoint_url=config.object_store.endpoint_url,
            region=config.object_store.region,
            access_key_id=config.object_store.access_key_id,
            secret_access_key=config.object_store.secret_access_key)))
    releases = providers.Singleton(ReleaseService, **basics, objects=object_store)
    downloads = providers.Singleton(DownloadService, **basics, objects=object_store,
                                    presign_ttl=config.downloads.presign_ttl)
    audit_log, issuing = (providers.Singleton(AuditLogService, **basics),
                          providers.Singleton(IssuingService, **basics))

    purchases = providers.Singleton(
        PurchaseService, **basics,
        policy=providers.Singleton(FeedPolicy, secret=config.feeds.purchases.secret,
                                   tolerance_seconds=config.feeds.purchases.tolerance_seconds))

    helpdesk = providers.Resource(_opened, providers.Selector(
        config.support.helpdesk,
        builtin=providers.Singleton(BuiltinHelpdesk, storage=storage),
        django_helpdesk=providers.Singleton(
            _django_helpdesk, url=config.support.django_helpdesk.url,
            username=config.support.django_helpdesk.username,
            password=config.support.django_helpdesk.password,
            queue=config.support.django_helpdesk.queue,
            timeout_seconds=config.support.django_helpdesk.timeout_seconds,
            webhook_secret=config.support.django_helpdesk.webhook_secret)))
    support_policy = providers.Singleton(
        SupportPolicy, sla=providers.Callable(_sla, config.support.sla),
        bucket=config.support.bucket, max_attachment_bytes=config.support.max_attachment_bytes,
        attachment_types=providers.Callable(frozenset, config.support.attachment_types))
    support_kit = {**basics, "objects": object_store, "helpdesk": helpdesk,
                   "policy": support_policy}
    support = providers.Singleton(SupportService, **support_kit)
    conversation = providers.Singleton(ConversationService, **support_kit)
    helpdesk_sync = providers.Singleton(
        HelpdeskSync, **support_kit, sync=providers.Singleton(
            SyncPolicy, max_attempts=config.support.max_attempts,
            feed_secret=config.support.feed_secret,
            base_delay=config.support.retry_base_seconds,
            max_delay=config.support.retry_max_seconds))

    reports = providers.Singleton(
        ReportService, **basics, licensing=licensing, support=support, renderer=renderer,
        spreadsheets=providers.Singleton(XlsxSpreadsheets),
        policy=providers.Singleton(
            ReportPolicy, brand=config.web.brand_name,
            pdf_row_limit=config.reports.pdf_row_limit,
            pdf_time_limit=config.reports.pdf_time_limit_seconds))

    subscriptions = providers.Singleton(
        ReportSubscriptions, **basics, reports=reports, composer=composer,
        policy=providers.Singleton(
            SubscriptionPolicy, secret=web_secret,
            link_ttl=providers.Callable(lambda hours: timedelta(hours=hours),
                                        config.reports.link_ttl_hours),
            base_url=config.base_url))

    limits = providers.Singleton(
        RateLimits, work=work, clock=clock, policy=providers.Singleton(
            LimitPolicy, window_seconds=config.rate_limits.window_seconds, limits=providers.Dict(
                verify=config.rate_limits.verify_per_address,
                feeds=config.rate_limits.feeds_per_address,
                reports=config.rate_limits.reports_per_user,
                archives=config.rate_limits.archives_per_user,
                password_links=config.rate_limits.password_links_per_address)))

    services = providers.Singleton(
        Services, storage=storage, auth=auth, cabinets=cabinets, users=users, catalog=catalog,
        licensing=licensing, purchases=purchases, documents=documents, releases=releases,
        downloads=downloads, audit_log=audit_log, issuing=issuing, support=support,
        conversation=conversation, helpdesk=helpdesk_sync, reports=reports,
        subscriptions=subscriptions, limits=limits, notifications=notifications,
        reminders=reminders, objects=object_store, events=event_bus, mailer=mailer,
        outbox=outbox, web_secret=web_secret, observed=providers.Dict(
            storage=storage, pdf=renderer, event_bus=event_bus))
    del basics, support_kit


T = TypeVar("T")


async def _resolved(value: T | Awaitable[T]) -> T:
    """Providers that depend on an async resource hand back awaitables."""
    return await value if inspect.isawaitable(value) else value


class StartupError(Exception):
    """The portal cannot start as configured; the message says why."""


class SchemaOutOfDate(StartupError):
    """The database lacks migrations and this start may not apply them."""


def build_container(settings: Settings) -> Container:
    container = Container()
    container.config.from_dict({
        **settings.model_dump(mode="python"),
        "paths": {
            "sqlite": settings.sqlite_path,
            "templates": PROJECT_ROOT / "templates",
            "objects": settings.data_dir / "objects",
            "mail": settings.data_dir / "mail",
            "sqlite_busy_timeout_ms": int(settings.storage.timeout_seconds * 1000),
            "signing_key": settings.keys_dir / "token-signing.jwk",
            "license_key": settings.keys_dir / "license-signing.jwk",
            "web_secret": settings.keys_dir / "web-secret",
        },
    })
    return container


@asynccontextmanager
async def open_services(settings: Settings, *, prepare_schema: bool = True
                        ) -> AsyncIterator[Services]:
    """Open every resource, yield the services, and close the resources again.

    With `prepare_schema`, pending migrations are applied when `storage.auto_migrate` is on,
    and refused with SchemaOutOfDate when it is off.
    """
    container = build_container(settings)
    await _resolved(container.init_resources())
    try:
        try:
            services = await _resolved(container.services())
        except KeyFileError as exc:
            raise StartupError(f"cannot load a signing key: {exc}") from exc
        except OSError as exc:
            # Generating a key or secret into data_dir failed.
            raise StartupError(f"cannot write {exc.filename or settings.keys_dir}: "
                               f"{exc.strerror} (check data_dir)") from exc
        if prepare_schema:
            if settings.storage.auto_migrate:
                await services.storage.migrate()
            elif pending := await services.storage.pending_migrations():
                raise SchemaOutOfDate(
                    f"the database lacks migrations {', '.join(pending)}: run `portal migrate`")
        yield services
    finally:
        await _resolved(container.shutdown_resources())


def write_new_signing_key(path: Path) -> None:
    """Create a token signing key file for production; FileExistsError if `path` exists."""
    write_key_file(path, new_signing_key())


def license_public_keys(settings: Settings) -> dict[str, Any]:
    """This portal's license-file public keys, read (never created) from its key file;
    LicenseFileRefused when there is none to read."""
    configured = settings.licensing.signing_key_file
    path = Path(configured) if configured else settings.keys_dir / "license-signing.jwk"
    if not path.exists():
        raise LicenseFileRefused(f"this portal has no license key at {path}; "
                                 "pass the portal's public keys with --keys")
    try:
        return JwcryptoLicenseSigner(read_key_file(path)).public_jwks()
    except KeyFileError as exc:
        raise LicenseFileRefused(f"{exc}; pass the portal's public keys with --keys") from None


def check_license_file(token: str, keys: dict[str, Any]) -> dict[str, Any]:
    """The claims of a license file, or LicenseFileRefused saying why not."""
    try:
        return verify_license_file(token, keys)
    except InvalidLicenseFile as exc:
        raise LicenseFileRefused(str(exc)) from None


class LicenseFileRefused(Exception):
    """A license file that is not one, or whose signature does not verify."""
