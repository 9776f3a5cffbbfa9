"""Work a process does on its own, again and again: it outlives a database outage."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from ports.storage import StorageUnavailable

log = logging.getLogger(__name__)


@dataclass
class JobRecord:
    """One repeated job of this process: when it last succeeded (Unix time; 0: never),
    how long its last round took, and how many rounds failed."""

    last_success: float = 0.0
    last_duration: float = 0.0
    failures: int = 0


class QueueFigures:
    """For operators, of a queue worked in the background (the outbox, the helpdesk's
    deliveries): what this process did with its items, by outcome, and the queue as last
    measured (all processes): how many wait, and how long the oldest has waited since it was
    queued (an item retried again and again grows old; its due time does not)."""

    def __init__(self, *outcomes: str) -> None:
        self._counts = dict.fromkeys(outcomes, 0)
        self._backlog: tuple[int, float] = (0, 0.0)

    def count(self, outcome: str) -> None:
        self._counts[outcome] += 1

    def measured(self, waiting: int, oldest_queued: datetime | None, now: datetime) -> None:
        self._backlog = (waiting, max(0.0, (now - oldest_queued).total_seconds())
                         if oldest_queued else 0.0)

    def stats(self) -> dict[str, float]:
        waiting, oldest_age = self._backlog
        return {**self._counts, "waiting": waiting, "oldest_age_seconds": oldest_age}


# Every repeated job of the process, by name: what its metrics report.
JOBS: dict[str, JobRecord] = {}
# Set when the process stops: each job ends after the round it is in. One per event loop
# (an event belongs to the loop it first waits in; tests run many).
_finishing: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = \
    weakref.WeakKeyDictionary()


def finish_rounds() -> None:
    """The process is stopping: every repeated job returns after its current round."""
    _stopping().set()


def _stopping() -> asyncio.Event:
    return _finishing.setdefault(asyncio.get_running_loop(), asyncio.Event())


def being_cancelled() -> bool:
    """Whether the running task was asked to stop (its error handlers must not go on)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def repeat(what: str, once: Callable[[], Awaitable[object]], interval: float,
                 wake: asyncio.Event | None = None) -> None:
    """`once` now, then every `interval` seconds, or as soon as `wake` is set; a failure is
    logged (a database outage in one line) and tried again."""
    record = JOBS.setdefault(what, JobRecord())
    stopping = _stopping()
    while not stopping.is_set():
        if wake is not None:
            wake.clear()  # before the work: a wake-up during it means work again
        started = time.monotonic()
        try:
            await once()
            record.last_success = time.time()
        except Exception as exc:
            record.failures += 1
            if being_cancelled():
                raise  # a cancelled query can surface as a database error
            if isinstance(exc, StorageUnavailable):
                log.warning("%s: the database is not answering: %s", what, exc)
            else:
                log.exception("%s failed; next try in %.0f s", what, interval)
        finally:
            record.last_duration = time.monotonic() - started
        if being_cancelled():  # asked to stop, whatever `once` did with the signal
            raise asyncio.CancelledError
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # arrives as the wake-up does, and the loop would never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval):
                if wake is None:
                    await stopping.wait()
                else:
                    await _first(wake, stopping)
    log.info("%s: stopped after its round", what)


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
