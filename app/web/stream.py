"""Live notifications over server-sent events: the streams open in this process, by user.

The event bus says "these notifications were created" (from any process); each open
stream of a recipient gets them through a bounded queue, without waiting on anyone. A
stream whose queue is full is ended: its client reconnects with Last-Event-ID and catches
up from storage, and a slow reader never slows the others. When the bus had lost its
server and has it back, every stream re-reads storage for what it may have missed.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from app.domain.events import DomainEvent
from app.domain.notifications import Notification
from app.services.notifications import CREATED, delivered
from ports.events import RESUMED

_END = None


class Resync:
    """In a stream's queue: look in storage for anything missed."""


RESYNC = Resync()


class Listener:
    """One stream's queue. Not an asyncio.Queue: one of those costs about 3 KB (four
    deques), and a portal holds thousands of streams; a list and a future do."""

    def __init__(self, user_id: str, size: int) -> None:
        self.user_id = user_id
        self.dropped = False
        self._ended = False
        self._items: list[Notification | Resync | None] = []
        self._waiter: asyncio.Future[None] | None = None
        self._size = size
        self._resync_queued = False

    def offer(self, notification: Notification | Resync) -> None:
        if self._ended or (notification is RESYNC and self._resync_queued):
            return  # one look in storage finds whatever a second would
        self._resync_queued = self._resync_queued or notification is RESYNC
        if len(self._items) >= self._size:
            self.end(dropped=True)
            return
        self._put(notification)

    def end(self, dropped: bool = False) -> None:
        """Stop the stream after what it holds; once only."""
        if not self._ended:
            self._ended = True
            self.dropped = dropped
            self._put(_END)

    def _put(self, item: Notification | Resync | None) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self) -> Notification | Resync | None:
        """The next notification (or RESYNC), or None when the stream is to end."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        found = self._items.pop(0)
        if found is RESYNC:
            self._resync_queued = False
        return found


class NotificationHub:
    def __init__(self, queue_size: int = 256) -> None:
        self._queue_size = queue_size
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        self.closing = False

    def attach(self, user_id: str) -> Listener:
        listener = Listener(user_id, self._queue_size)
        if self.closing:
            listener.end()
        self._listeners[user_id].add(listener)
        return listener

    def detach(self, listener: Listener) -> None:
        found = self._listeners.get(listener.user_id)
        if found is not None:
            found.discard(listener)
            if not found:
                del self._listeners[listener.user_id]

    @property
    def open_streams(self) -> int:
        return sum(len(found) for found in self._listeners.values())

    async def on_event(self, event: DomainEvent) -> None:
        if event.name == RESUMED:
            for found in list(self._listeners.values()):
                for listener in list(found):
                    listener.offer(RESYNC)
            return
        if event.name != CREATED:
            return
        for notification in delivered(event):
            for listener in list(self._listeners.get(notification.user_id, ())):
                listener.offer(notification)

    def close_all(self) -> None:
        """On shutdown: every stream ends now, so that stopping takes seconds."""
        self.closing = True
        for found in self._listeners.values():
            for listener in found:
                listener.end()
