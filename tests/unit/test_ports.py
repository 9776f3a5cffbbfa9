"""Every adapter and every fake satisfies its port.

Twice over: mypy checks the assignments under TYPE_CHECKING below (a class whose instances
are not its port fails the type check of the suite), and the tests compare, member by
member, each port's methods with each implementation's: names, parameters, and whether
they are coroutines. A port without an entry here fails too.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, get_type_hints

import pytest

import ports
from adapters.argon2 import Argon2PasswordHasher
from adapters.builtin_helpdesk import BuiltinHelpdesk
from adapters.django_helpdesk import DjangoHelpdesk
from adapters.jwcrypto import JwcryptoLicenseSigner, JwcryptoTokenCodec
from adapters.localfs import LocalObjectStore
from adapters.maildir import MaildirMailer
from adapters.memory import InProcessEventBus, LruBlobCache
from adapters.postgres import PostgresStorage
from adapters.redis import RedisEventBus
from adapters.s3 import S3ObjectStore
from adapters.smtp import SmtpMailer
from adapters.sql.unit_of_work import SqlUnitOfWork
from adapters.sqlite import SqliteStorage
from adapters.system import SystemClock, Uuid7Ids
from adapters.weasyprint import WeasyPrintRenderer
from adapters.xlsxwriter import XlsxSpreadsheets
from ports.documents import BlobCache, DocumentRenderer
from ports.events import EventBus, EventPublisher
from ports.helpdesk import Helpdesk
from ports.mail import Mailer
from ports.objects import ObjectStore
from ports.security import LicenseSigner, PasswordHasher, TokenCodec
from ports.spreadsheets import SpreadsheetWriter
from ports.storage import Storage, UnitOfWork
from ports.system import Clock, IdGenerator, Observed
from tests.fakes import (
    FakeBlobCache,
    FakeClock,
    FakeHelpdesk,
    FakeIds,
    FakeLicenseSigner,
    FakeMailer,
    FakeObjectStore,
    FakePasswordHasher,
    FakeRenderer,
    FakeSpreadsheets,
    FakeStorage,
    FakeTokenCodec,
    FakeUnitOfWork,
    RecordingEventBus,
)

# Each port, and the classes that stand for it: adapters first, then the fake.
PORTS: dict[Any, list[type]] = {
    Storage: [SqliteStorage, PostgresStorage, FakeStorage],
    ObjectStore: [LocalObjectStore, S3ObjectStore, FakeObjectStore],
    DocumentRenderer: [WeasyPrintRenderer, FakeRenderer],
    BlobCache: [LruBlobCache, FakeBlobCache],
    Mailer: [MaildirMailer, SmtpMailer, FakeMailer],
    EventBus: [InProcessEventBus, RedisEventBus, RecordingEventBus],
    PasswordHasher: [Argon2PasswordHasher, FakePasswordHasher],
    TokenCodec: [JwcryptoTokenCodec, FakeTokenCodec],
    LicenseSigner: [JwcryptoLicenseSigner, FakeLicenseSigner],
    Clock: [SystemClock, FakeClock],
    IdGenerator: [Uuid7Ids, FakeIds],
    Helpdesk: [BuiltinHelpdesk, DjangoHelpdesk, FakeHelpdesk],
    SpreadsheetWriter: [XlsxSpreadsheets, FakeSpreadsheets],
    # What operators watch (metrics): the adapters that have figures to give.
    Observed: [SqliteStorage, PostgresStorage, WeasyPrintRenderer, InProcessEventBus,
               RedisEventBus],
}

if TYPE_CHECKING:
    # What mypy holds each class to: its instances are its port.
    _storage: list[Callable[..., Storage]] = [SqliteStorage, PostgresStorage, FakeStorage]
    _units: list[Callable[..., UnitOfWork]] = [SqlUnitOfWork, FakeUnitOfWork]
    _objects: list[Callable[..., ObjectStore]] = [LocalObjectStore, S3ObjectStore,
                                                  FakeObjectStore]
    _renderers: list[Callable[..., DocumentRenderer]] = [WeasyPrintRenderer, FakeRenderer]
    _caches: list[Callable[..., BlobCache]] = [LruBlobCache, FakeBlobCache]
    _mailers: list[Callable[..., Mailer]] = [MaildirMailer, SmtpMailer, FakeMailer]
    _buses: list[Callable[..., EventBus]] = [InProcessEventBus, RedisEventBus,
                                             RecordingEventBus]
    _hashers: list[Callable[..., PasswordHasher]] = [Argon2PasswordHasher, FakePasswordHasher]
    _codecs: list[Callable[..., TokenCodec]] = [JwcryptoTokenCodec, FakeTokenCodec]
    _signers: list[Callable[..., LicenseSigner]] = [JwcryptoLicenseSigner, FakeLicenseSigner]
    _clocks: list[Callable[..., Clock]] = [SystemClock, FakeClock]
    _ids: list[Callable[..., IdGenerator]] = [Uuid7Ids, FakeIds]
    _helpdesks: list[Callable[..., Helpdesk]] = [BuiltinHelpdesk, DjangoHelpdesk,
                                                 FakeHelpdesk]
    _spreadsheets: list[Callable[..., SpreadsheetWriter]] = [XlsxSpreadsheets,
                                                             FakeSpreadsheets]
    _observed: list[Callable[..., Observed]] = [SqliteStorage, PostgresStorage,
                                                WeasyPrintRenderer, InProcessEventBus,
                                                RedisEventBus]


def _members(protocol: type) -> dict[str, Any]:
    """The methods and properties a protocol declares (its own and its bases')."""
    found: dict[str, Any] = {}
    for klass in reversed(protocol.__mro__):
        if klass is object or not getattr(klass, "_is_protocol", False):
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_") and (callable(value) or isinstance(value, property)):
                found[name] = value
    return found


def _shape(function: Any) -> tuple[bool, list[tuple[str, Any]]]:
    """Whether it must be awaited (or iterated with async for), and its parameters."""
    asynchronous = inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(
        function)
    parameters = [(p.name, p.kind) for p in inspect.signature(function).parameters.values()
                  if p.name != "self"]
    return asynchronous, parameters


def _mismatches(protocol: type, implementation: Any) -> list[str]:
    """How `implementation` (a class, or an instance for attribute members) falls short."""
    wrong = []
    for name, declared in _members(protocol).items():
        if not hasattr(implementation, name):
            wrong.append(f"{name}: missing")
            continue
        if isinstance(declared, property):
            continue  # an attribute or a property; what it holds is checked where it matters
        found = getattr(implementation, name)
        if isinstance(found, property) or not callable(found):
            wrong.append(f"{name}: not a method")
            continue
        declared_async, declared_parameters = _shape(declared)
        # An `async def` generator and a plain `def` returning an async iterator both do:
        # what matters is whether it needs an await.
        found_async, found_parameters = _shape(found)
        if inspect.isasyncgenfunction(found) and not inspect.iscoroutinefunction(declared):
            found_async = declared_async
        if found_async != declared_async:
            wrong.append(f"{name}: {'a coroutine' if declared_async else 'not a coroutine'} "
                         "in the port")
        if found_parameters != declared_parameters:
            wrong.append(f"{name}: parameters {found_parameters} against the port's "
                         f"{declared_parameters}")
    return wrong


@pytest.mark.parametrize(("protocol", "implementation"), [
    (protocol, implementation) for protocol, classes in PORTS.items()
    for implementation in classes], ids=lambda value: getattr(value, "__name__", str(value)))
def test_each_implementation_has_every_member_of_its_port(protocol: type,
                                                          implementation: type) -> None:
    assert _mismatches(protocol, implementation) == []


@pytest.mark.parametrize("unit_of_work", [
    SqlUnitOfWork(db=None),  # type: ignore[arg-type]  # only the repositories are looked at
    FakeUnitOfWork(FakeStorage())], ids=["sql", "fake"])
def test_each_unit_of_work_holds_every_repository_of_the_port(unit_of_work: Any) -> None:
    assert _mismatches(UnitOfWork, unit_of_work) == []
    for name, declared in _members(UnitOfWork).items():
        if isinstance(declared, property):
            repository_port = get_type_hints(declared.fget)["return"]
            origin = getattr(repository_port, "__origin__", repository_port)
            assert _mismatches(origin, getattr(unit_of_work, name)) == [], name


def test_every_port_has_its_implementations_listed() -> None:
    declared = set()
    for module in pkgutil.walk_packages(ports.__path__, "ports."):
        for value in vars(importlib.import_module(module.name)).values():
            if (inspect.isclass(value) and getattr(value, "_is_protocol", False)
                    and value.__module__ == module.name):
                declared.add(value)
    # Repositories and the unit of work are held to the port through Storage (above);
    # the publisher is the half of the bus the core uses.
    covered = set(PORTS) | {EventPublisher, UnitOfWork} | {
        getattr(hint, "__origin__", hint)
        for name, member in _members(UnitOfWork).items() if isinstance(member, property)
        for hint in [get_type_hints(member.fget)["return"]]} - {type(None)}
    assert declared - covered == set()
