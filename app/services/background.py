"""Work a process does on its own, again and again: it outlives a database outage."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from app.services.mail import being_cancelled
from ports.storage import StorageUnavailable

log = logging.getLogger(__name__)


async def repeat(what: str, once: Callable[[], Awaitable[object]], interval: float,
                 wake: asyncio.Event | None = None) -> None:
    """`once` now, then every `interval` seconds, or as soon as `wake` is set; a failure is
    logged (a database outage in one line) and tried again."""
    while True:
        if wake is not None:
            wake.clear()
        try:
            await once()
        except Exception as exc:
            if being_cancelled():
                raise  # a cancelled query can surface as a database error
            if isinstance(exc, StorageUnavailable):
                log.warning("%s: the database is not answering: %s", what, exc)
            else:
                log.exception("%s failed; next try in %.0f s", what, interval)
        if wake is None:
            await asyncio.sleep(interval)
            continue
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval):
                await wake.wait()
