"""Fakes of the ports that are not storage: time, ids, hashing, tokens, the event bus,
mail, PDF rendering and the object store. Each satisfies its port (tests/unit/test_ports.py
checks it) and keeps what it was given for tests to look at."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.domain.events import DomainEvent
from ports.documents import RenderingFailed
from ports.events import Heard, Subscriber
from ports.mail import Email, TemporaryMailError
from ports.objects import ObjectInfo, ObjectNotFound, check_key
from ports.security import InvalidToken


class FakeClock:
    def __init__(self, now: datetime = datetime(2026, 11, 26, 12, tzinfo=UTC)) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


class FakeIds:
    """Time-ordered like the real ids: a counter in the first field."""

    def __init__(self) -> None:
        self.count = 0

    def new_id(self) -> str:
        self.count += 1
        return f"{self.count:08x}-0000-7000-8000-{uuid.uuid4().hex[:12]}"


class FakePasswordHasher:
    """"Hashes" by prefixing; checks take no time, so no timing is tested here."""

    async def hash(self, password: str) -> str:
        return "fake$" + password

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return password_hash is not None and password_hash == "fake$" + password

    def needs_rehash(self, password_hash: str) -> bool:
        return False


class FakeTokenCodec:
    """Unsigned JSON tokens whose expiry is judged by the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock

    def encode(self, claims: dict[str, Any]) -> str:
        return "fake." + json.dumps(claims, sort_keys=True)

    def decode(self, token: str) -> dict[str, Any]:
        if not token.startswith("fake."):
            raise InvalidToken("not a fake token")
        claims: dict[str, Any] = json.loads(token[5:])
        if claims["exp"] <= self._clock.now().timestamp():
            raise InvalidToken("expired")
        return claims

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": []}


class FakeLicenseSigner:
    """"Signs" a license file as its claims in JSON behind a marker."""

    def sign(self, claims: dict[str, Any]) -> str:
        return "signed." + json.dumps(claims, sort_keys=True)

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [{"kty": "OKP", "kid": "fake", "use": "sig", "alg": "EdDSA"}]}


class RecordingEventBus:
    """Keeps what was published, and hands it to subscribers in turn."""

    def __init__(self) -> None:
        self.published: list[DomainEvent] = []
        self._subscribers: list[Subscriber] = []

    async def publish(self, event: DomainEvent) -> None:
        self.published.append(event)
        for subscriber in list(self._subscribers):
            await subscriber(event)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    async def tell(self, heard: Heard) -> None:
        """What a real bus says on its own (Resumed), as if it had."""
        for subscriber in list(self._subscribers):
            await subscriber(heard)


class FakeMailer:
    """Keeps the messages it was handed; fails the next ones when told to."""

    def __init__(self) -> None:
        self.sent: list[Email] = []
        self.failures: list[Exception] = []

    async def send(self, email: Email) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(email)

    def fail_next(self, count: int = 1,
                  error: Exception | None = None) -> None:
        self.failures += [error or TemporaryMailError("the fake server is down")] * count


class FakeRenderer:
    """A "PDF" that is the template's name and the context as JSON; counts renderings."""

    def __init__(self) -> None:
        self.renderings = 0
        self.broken = False

    def fingerprint(self, templates: list[str], context: dict[str, Any]) -> str:
        text = json.dumps([templates[0], context], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    async def render_pdf(self, templates: list[str], context: dict[str, Any]) -> bytes:
        if self.broken:
            raise RenderingFailed("the fake renderer is broken")
        self.renderings += 1
        return b"%PDF-fake " + json.dumps([templates[0], context], sort_keys=True,
                                          default=str).encode()


class FakeBlobCache:
    def __init__(self) -> None:
        self.items: OrderedDict[str, bytes] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        return self.items.get(key)

    async def put(self, key: str, value: bytes) -> None:
        self.items[key] = value


class FakeObjectStore:
    """Objects in a dict, by bucket and key; with `links`, it makes presigned URLs as S3
    does, else none (as the local folder)."""

    def __init__(self, links: bool = False) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, datetime]] = {}
        self._links = links

    def _info(self, key: str, data: bytes, modified: datetime) -> ObjectInfo:
        return ObjectInfo(key, len(data), hashlib.md5(data, usedforsecurity=False).hexdigest(),
                          modified)

    async def list_objects(self, bucket: str, prefix: str, *, after: str | None = None,
                           limit: int = 1000) -> list[ObjectInfo]:
        check_key(bucket)
        found = sorted(key for b, key in self.objects if b == bucket and key.startswith(prefix)
                       and (after is None or key > after))
        return [self._info(key, *self.objects[(bucket, key)]) for key in found[:limit]]

    async def head(self, bucket: str, key: str) -> ObjectInfo:
        check_key(bucket, key)
        if (bucket, key) not in self.objects:
            raise ObjectNotFound(f"{bucket}/{key}")
        return self._info(key, *self.objects[(bucket, key)])

    async def get(self, bucket: str, key: str, *, start: int = 0,
                  end: int | None = None) -> AsyncIterator[bytes]:
        check_key(bucket, key)
        if (bucket, key) not in self.objects:
            raise ObjectNotFound(f"{bucket}/{key}")
        data = self.objects[(bucket, key)][0][start:end]
        for offset in range(0, len(data), 4096):
            yield data[offset:offset + 4096]

    async def put(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> ObjectInfo:
        check_key(bucket, key)
        data = b"".join([chunk async for chunk in chunks])
        self.objects[(bucket, key)] = (data, datetime.now(UTC))
        return self._info(key, *self.objects[(bucket, key)])

    async def delete(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)

    def local_path(self, bucket: str, key: str) -> Path | None:
        return None

    async def presigned_url(self, bucket: str, key: str, ttl_seconds: int,
                            filename: str | None = None) -> str | None:
        if not self._links:
            return None
        return f"https://objects.test/{bucket}/{key}?ttl={ttl_seconds}"
