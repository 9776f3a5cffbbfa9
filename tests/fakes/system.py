"""Fakes of the ports that are not storage: time, ids, hashing, tokens, the event bus,
mail, PDF rendering and the object store. Each satisfies its port (tests/unit/test_ports.py
checks it) and keeps what it was given for tests to look at."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.domain.events import DomainEvent
from app.domain.reports import Column, Row, Summary
from app.domain.support import ExternalComment, ExternalFile, IssueStatus, Priority, TicketState
from ports.documents import RenderingFailed
from ports.events import Heard, Subscriber
from ports.helpdesk import CommentDraft, FileDraft, InboundRefused, TicketDraft
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

    async def probe(self) -> str:
        return "recording"

    async def tell(self, heard: Heard) -> None:
        """What a real bus says on its own (Resumed), as if it had."""
        for subscriber in list(self._subscribers):
            await subscriber(heard)


class FakeMailer:
    """Keeps the messages it was handed; fails the next ones when told to."""

    def __init__(self) -> None:
        self.sent: list[Email] = []
        self.failures: list[Exception] = []

    @property
    def longest_send(self) -> float:
        return 1.0

    async def send(self, email: Email) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(email)

    async def probe(self) -> str:
        if self.failures:
            raise self.failures.pop(0)
        return "fake mailer"

    def fail_next(self, count: int = 1,
                  error: Exception | None = None) -> None:
        self.failures += [error or TemporaryMailError("the fake server is down")] * count


class FakeSpreadsheets:
    """Keeps what would be written: the rows and the summary, by path."""

    def __init__(self) -> None:
        self.books: dict[Path, tuple[list[Row], Summary]] = {}

    async def write(self, path: Path, title: str, columns: Sequence[Column],
                    batches: AsyncIterable[list[Row]], summary: Summary) -> None:
        rows = [row async for batch in batches for row in batch]
        self.books[path] = (rows, summary)


class FakeRenderer:
    """A "PDF" that is the template's name and the context as JSON; counts renderings."""

    def __init__(self) -> None:
        self.renderings = 0
        self.broken = False

    def fingerprint(self, templates: list[str], context: dict[str, Any]) -> str:
        text = json.dumps([templates[0], context], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    async def render_pdf(self, templates: list[str], context: dict[str, Any], *,
                         time_limit: float | None = None) -> bytes:
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


class FakeHelpdesk:
    """An external helpdesk in memory, with agents a test can act as, and failures to
    inject: the next calls raise what `failures` holds."""

    def __init__(self, secret: str = "hook-secret") -> None:
        self.tickets: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.failures: list[Exception] = []
        # Raised by the next reads of a file's bytes.
        self.file_failures: list[Exception] = []
        self.calls = 0
        self._changes: list[str] = []
        self._secret = secret

    @property
    def name(self) -> str:
        return "fake"

    async def probe(self) -> str:
        self._call()
        return "fake helpdesk"

    @property
    def external(self) -> bool:
        return True

    def _call(self) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)

    def _ticket_of(self, portal_id: str) -> str | None:
        return next((t for t, v in self.tickets.items() if v["portal_id"] == portal_id), None)

    async def create_ticket(self, draft: TicketDraft) -> str:
        self._call()
        found = self._ticket_of(draft.portal_id)
        if found is not None:
            return found
        ticket = f"T{len(self.tickets) + 1}"
        self.tickets[ticket] = {"portal_id": draft.portal_id, "draft": draft,
                                "status": draft.status, "priority": draft.priority,
                                "comments": []}
        return ticket

    async def update_ticket(self, external_id: str, draft: TicketDraft) -> None:
        self._call()
        self.tickets[external_id].update(draft=draft, status=draft.status,
                                         priority=draft.priority)

    async def add_comment(self, external_id: str, comment: CommentDraft) -> str:
        self._call()
        comments: list[ExternalComment] = self.tickets[external_id]["comments"]
        found = next((c for c in comments if c.portal_id == comment.portal_id), None)
        if found is not None:
            return found.external_id
        made = ExternalComment(external_id=f"{external_id}-c{len(comments) + 1}",
                               author_name=comment.author_name, body=comment.body,
                               public=comment.public, at=datetime.now(UTC),
                               portal_id=comment.portal_id)
        comments.append(made)
        return made.external_id

    async def add_file(self, external_id: str, file: FileDraft,
                       chunks: AsyncIterable[bytes]) -> str:
        self._call()
        data = b"".join([chunk async for chunk in chunks])
        key = f"{external_id}-{file.portal_id}"
        self.files[key] = data
        return key

    async def ticket(self, external_id: str) -> TicketState:
        self._call()
        ticket = self.tickets[external_id]
        return TicketState(external_id=external_id, status=ticket["status"],
                           raw_status=f"raw {ticket['status'].value}",
                           priority=ticket["priority"], comments=list(ticket["comments"]))

    async def changed(self, cursor: str | None) -> tuple[list[str], str | None]:
        self._call()
        start = int(cursor) if cursor else 0
        return self._changes[start:], str(len(self._changes))

    async def file(self, file_id: str) -> AsyncIterator[bytes]:
        if self.file_failures:
            raise self.file_failures.pop(0)
        data = self.files[file_id]
        for offset in range(0, len(data), 1000):
            yield data[offset:offset + 1000]

    def inbound(self, secret: str | None, headers: Mapping[str, str],
                body: bytes) -> list[str]:
        if secret != self._secret:
            raise InboundRefused("not the helpdesk's secret")
        found = json.loads(body)
        return [str(found["ticket"])]

    # ---- what agents do

    def reply(self, ticket: str, body: str, *, public: bool = True, by: str = "Agent Smith",
              files: dict[str, bytes] | None = None) -> None:
        comments: list[ExternalComment] = self.tickets[ticket]["comments"]
        attached = []
        for name, data in (files or {}).items():
            file_id = f"{ticket}-f{len(self.files) + 1}"
            self.files[file_id] = data
            attached.append(ExternalFile(file_id, name, "application/octet-stream",
                                         len(data)))
        comments.append(ExternalComment(external_id=f"{ticket}-c{len(comments) + 1}",
                                        author_name=by, body=body, public=public,
                                        at=datetime.now(UTC), attachments=tuple(attached)))
        self._changes.append(ticket)

    def set(self, ticket: str, *, status: IssueStatus | None = None,
            priority: Priority | None = None) -> None:
        if status is not None:
            self.tickets[ticket]["status"] = status
        if priority is not None:
            self.tickets[ticket]["priority"] = priority
        self._changes.append(ticket)
