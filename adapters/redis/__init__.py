"""Event bus over Redis pub/sub, for several portal processes.

Pub/sub delivers at most once and only to those listening at that moment, so it only wakes
subscribers: whatever must not be lost is stored before it is published, and a subscriber
that missed something catches up from storage. Publishing never fails the caller: with
Redis down the event is dropped with a log line (and this process's subscribers are told to
look in storage), and the listener reconnects on its own, telling them the same once back.
Nor does publishing ever wait for Redis: events go into a bounded queue that one task hands
on in order, so a frozen Redis (which answers nothing until each socket timeout) slows no
request; past the queue's bound events are dropped, counted and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, get_args
from urllib.parse import urlsplit

import redis.asyncio as redis
from pydantic import TypeAdapter, ValidationError
from redis.exceptions import RedisError

from adapters.memory import hand_on
from app.domain.events import DomainEvent
from ports.events import Resumed, Subscriber

log = logging.getLogger(__name__)
RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)

# On the wire: the event's class name, a space, its fields as JSON. Every process of one
# portal runs the same code, so the classes are the same on both ends.
_CODECS: dict[str, TypeAdapter[Any]] = {
    cls.__name__: TypeAdapter(cls) for cls in get_args(DomainEvent)}


def encode(event: DomainEvent) -> bytes:
    name = type(event).__name__
    return name.encode() + b" " + _CODECS[name].dump_json(event)


def decode(raw: str | bytes) -> DomainEvent:
    """The event a message carries; ValueError when it carries none."""
    data = raw.encode() if isinstance(raw, str) else raw
    name, _, body = data.partition(b" ")
    codec = _CODECS.get(name.decode(errors="replace"))
    if codec is None:
        raise ValueError(f"no event is called {name[:40]!r}")
    try:
        event: DomainEvent = codec.validate_json(body)
    except ValidationError as exc:
        raise ValueError(str(exc)) from None
    return event


class RedisEventBus:
    def __init__(self, url: str, channel: str, timeout_seconds: float = 2.0,
                 queue_size: int = 10_000) -> None:
        self._url = url
        self._channel = channel
        self._timeout = timeout_seconds
        self._subscribers: list[Subscriber] = []
        self._client: redis.Redis | None = None
        self._listen_client: redis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._outgoing: asyncio.Queue[DomainEvent] = asyncio.Queue(queue_size)
        # What became of the events handed to publish(), for logs and operators.
        self.published = 0
        self.failed = 0
        self.dropped = 0

    async def open(self) -> None:
        self._client = redis.Redis.from_url(
            self._url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout)
        # The listener waits for messages as long as it takes: no read timeout on its
        # connection; a Redis that dies closes the socket, which ends the wait.
        self._listen_client = redis.Redis.from_url(
            self._url, socket_connect_timeout=self._timeout, health_check_interval=15)
        self._listener = asyncio.create_task(self._listen(), name="redis-event-bus")
        self._sender = asyncio.create_task(self._send_forever(), name="redis-publisher")

    async def close(self) -> None:
        if self._sender is not None:
            # What this process announced last still goes out, unless Redis is away.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._timeout):
                    await self._outgoing.join()
        for task in (self._listener, self._sender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for client in (self._client, self._listen_client):
            if client is not None:
                await client.aclose()

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    async def ready(self, seconds: float) -> bool:
        """Whether the listener is subscribed (waiting up to `seconds` for it)."""
        try:
            async with asyncio.timeout(seconds):
                await self._listening.wait()
        except TimeoutError:
            return False
        return True

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    async def probe(self) -> str:
        assert self._client is not None, "open() the bus first"
        await self._client.ping()
        where = urlsplit(self._url)
        return f"Redis at {where.hostname}:{where.port or 6379} answers (channel {self._channel})"

    def stats(self) -> dict[str, float]:
        return {"published": self.published, "publish_failures": self.failed,
                "dropped": self.dropped, "waiting": self._outgoing.qsize()}

    async def publish(self, event: DomainEvent) -> None:
        """Queued, never awaited on Redis: returns at once."""
        try:
            self._outgoing.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("event bus: %d events waiting for Redis; %d dropped so far "
                            "(stored first, so streams catch up from storage)",
                            self._outgoing.qsize(), self.dropped)
            await hand_on(self._subscribers, Resumed())

    async def _send_forever(self) -> None:
        """Hand the queued events to Redis, one at a time and in order."""
        assert self._client is not None, "open() the bus first"
        while True:
            event = await self._outgoing.get()
            try:
                await self._client.publish(self._channel, encode(event))
                self.published += 1
            except (RedisError, OSError) as exc:
                self.failed += 1
                log.warning("event %s not published, Redis is unavailable (%d so far, %d "
                            "waiting): %s", type(event).__name__, self.failed,
                            self._outgoing.qsize(), exc)
                # This process's own subscribers look in storage for what it announced.
                await hand_on(self._subscribers, Resumed())
            finally:
                self._outgoing.task_done()

    async def _listen(self) -> None:
        """Subscribe and hand every message to the subscribers; reconnect after a failure,
        backing off, for as long as the bus is open."""
        assert self._listen_client is not None
        failures = 0
        while True:
            try:
                async with self._listen_client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    self._listening.set()
                    if failures:
                        log.info("event bus: listening on Redis again")
                        await hand_on(self._subscribers, Resumed())
                    failures = 0
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            await self._deliver(message["data"])
            except (RedisError, OSError) as exc:
                self._listening.clear()
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                if failures == 0:
                    log.warning("event bus: lost Redis (%s); retrying", exc)
                failures += 1
                await asyncio.sleep(delay)

    async def _deliver(self, raw: str | bytes) -> None:
        try:
            event = decode(raw)
        except ValueError:
            log.warning("event bus: ignoring a message that is not an event: %.200r", raw)
            return
        await hand_on(self._subscribers, event)
