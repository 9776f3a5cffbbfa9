"""Live notifications over server-sent events: the streams open in this process, by user.

The event bus says "this message was made at position n, for these users" (from any
process); each open stream of a recipient gets it through a bounded queue, without waiting
on anyone. A stream whose queue is full is ended: its client reconnects with Last-Event-ID
and catches up from storage, and a slow reader never slows the others.

Positions are committed in order, so the hub hands them on in order: a position that
arrives before one below it (two processes published at once), or after the bus lost one,
means the missing ones are in storage already, and the hub reads them from there first.
Position order is what lets a stream resume "after n" with nothing skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable

from app.domain.events import NotificationsCreated
from app.domain.notifications import Notification
from app.services.background import being_cancelled
from ports.events import Heard, Resumed

log = logging.getLogger(__name__)

# From storage: these users' notifications from a position on (at most so many), with the
# position read up to; and the newest position.
Since = Callable[[int, list[str], int], Awaitable[tuple[list[Notification], int]]]
Newest = Callable[[], Awaitable[int]]

_END = None


class Resync:
    """In a stream's queue: look in storage for anything missed."""


RESYNC = Resync()


class Heartbeat:
    """In an idle stream's queue: write a comment, so that the client and anything in
    between see the connection is alive."""


HEARTBEAT = Heartbeat()
Item = Notification | Resync | Heartbeat


class Listener:
    """One stream's queue. Not an asyncio.Queue: one of those costs about 3 KB (four
    deques), and a portal holds thousands of streams; a list and a future do."""

    __slots__ = ("user_id", "dropped", "writing_since", "written", "abort", "_ended",  # noqa: RUF023
                 "_items", "_waiter", "_size", "_resync_queued")

    def __init__(self, user_id: str, size: int) -> None:
        self.user_id = user_id
        self.dropped = False
        # When the stream's current write began (loop time), while one waits on the client;
        # when its last one ended; and how to cut its connection (set by the stream).
        self.writing_since: float | None = None
        self.written = asyncio.get_running_loop().time()
        self.abort: Callable[[], object] | None = None
        self._ended = False
        self._items: list[Item | None] = []
        self._waiter: asyncio.Future[None] | None = None
        self._size = size
        self._resync_queued = False

    def offer(self, notification: Item) -> None:
        if self._ended or (notification is RESYNC and self._resync_queued):
            return  # one look in storage finds whatever a second would
        self._resync_queued = self._resync_queued or notification is RESYNC
        if len(self._items) >= self._size:
            self.end(dropped=True)
            return
        self._put(notification)

    def idle_since(self, now: float) -> float:
        """How long the stream has had nothing to write and written nothing (0 if busy)."""
        if self.writing_since is not None or self._items or self._ended:
            return 0.0
        return now - self.written

    def end(self, dropped: bool = False) -> None:
        """Stop the stream after what it holds; once only."""
        if not self._ended:
            self._ended = True
            self.dropped = dropped
            self._put(_END)

    def _put(self, item: Item | None) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self) -> Item | None:
        """The next notification (or RESYNC, or HEARTBEAT), or None when the stream is to
        end."""
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
    def __init__(self, queue_size: int = 256, catch_up_limit: int = 20_000,
                 stall_seconds: float = 30, heartbeat_seconds: float = 10) -> None:
        self._queue_size = queue_size
        self._catch_up_limit = catch_up_limit
        self._stall_seconds = stall_seconds
        self._heartbeat_seconds = heartbeat_seconds
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        self.closing = False
        self._next: int | None = None  # the position due next; None: not following
        self._since: Since | None = None
        self._newest: Newest | None = None
        self._lock = asyncio.Lock()
        # For operators: notifications handed to streams, streams cut for not reading,
        # and reads of storage for what the bus did not bring.
        self.sent = self.dropped = self.catch_up_reads = 0

    def stats(self) -> dict[str, float]:
        return {"open_streams": self.open_streams, "sent": self.sent,
                "dropped": self.dropped, "catch_up_reads": self.catch_up_reads}

    def follow(self, newest: int, since: Since, newest_now: Newest) -> None:
        """Hand positions on in order from after `newest`, reading missed ones from storage."""
        self._next, self._since, self._newest = newest + 1, since, newest_now

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

    async def on_event(self, event: Heard) -> None:
        if isinstance(event, Resumed):
            await self.catch_up()  # whatever the bus lost meanwhile
            return
        if not isinstance(event, NotificationsCreated):
            return
        batch = event.batch
        async with self._lock:
            if self._next is not None:
                if batch.position < self._next:
                    return  # handed on already, from storage
                if batch.position > self._next:
                    await self._fill(before=batch.position)
                self._next = batch.position + 1
            for user_id in batch.users:
                found = self._listeners.get(user_id)
                if found:
                    notification = batch.notification(user_id)
                    for listener in list(found):
                        listener.offer(notification)
                        self.sent += 1

    async def catch_up(self) -> None:
        """Hand on from storage whatever was committed and not heard of: after the bus lost
        its server."""
        async with self._lock:
            await self._fill(before=None)

    async def check(self) -> None:
        """Now and then: hand on what storage has that the bus lost (another process's
        message). If storage does not answer, the streams are left as they are until the
        next check."""
        async with self._lock:
            await self._fill(before=None, resync_on_failure=False)

    async def sweep(self) -> None:
        """Now and then, with no storage involved: cut the streams whose client stopped
        reading, and give the idle ones a heartbeat."""
        now = asyncio.get_running_loop().time()
        self.cut_stalled(now)
        self.beat(now)

    def beat(self, now: float) -> int:
        """A heartbeat for each stream that wrote nothing for `heartbeat_seconds`; how many.
        One sweep for all streams instead of a timer (and a task) for each."""
        beaten = 0
        for found in list(self._listeners.values()):
            for listener in list(found):
                if listener.idle_since(now) >= self._heartbeat_seconds:
                    listener.offer(HEARTBEAT)
                    beaten += 1
        return beaten

    def cut_stalled(self, now: float) -> int:
        """End the streams whose current write has waited on their client for longer than
        `stall_seconds` (the client stopped reading); how many. One sweep for all streams
        instead of a timer for every write."""
        cut = 0
        for found in list(self._listeners.values()):
            for listener in list(found):
                since = listener.writing_since
                if since is not None and now - since > self._stall_seconds:
                    listener.end(dropped=True)
                    if listener.abort is not None:
                        listener.abort()
                    cut += 1
        self.dropped += cut
        if cut:
            log.info("live streams: cut %d whose client stopped reading", cut)
        return cut

    async def _fill(self, before: int | None, resync_on_failure: bool = True) -> None:
        """Hand on what storage holds from the position due next (up to `before`)."""
        if self._next is None or self._since is None or self._newest is None:
            self._resync_all()  # not following positions: each stream looks for itself
            return
        try:
            if before is None and await self._newest() < self._next:
                return  # nothing missed
            asked = list(self._listeners)
            self.catch_up_reads += 1
            found, newest = await self._since(self._next, asked, self._catch_up_limit)
        except Exception as exc:
            if being_cancelled() or not resync_on_failure:
                raise
            log.warning("live streams: could not read missed notifications (%s); every "
                        "stream looks for itself", exc)
            self._resync_all()
            return
        if len(found) >= self._catch_up_limit:  # too many to hold: each stream reads its own
            self._next = newest + 1
            self._resync_all()
            return
        for notification in found:
            if before is not None and notification.seq >= before:
                break
            for listener in list(self._listeners.get(notification.user_id, ())):
                listener.offer(notification)
                self.sent += 1
        # A stream opened meanwhile, for a user not asked about, may have read storage
        # before what was just handed on: it looks for itself.
        for user_id in set(self._listeners).difference(asked):
            for listener in list(self._listeners[user_id]):
                listener.offer(RESYNC)
        self._next = before if before is not None else newest + 1

    def _resync_all(self) -> None:
        for found in list(self._listeners.values()):
            for listener in list(found):
                listener.offer(RESYNC)

    def close_all(self) -> None:
        """On shutdown: every stream ends now, so that stopping takes seconds."""
        self.closing = True
        for found in self._listeners.values():
            for listener in found:
                listener.end()
