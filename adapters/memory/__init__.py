"""In-process adapters for the embedded default (one process)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from app.domain.events import DomainEvent
from ports.events import Subscriber

log = logging.getLogger(__name__)


class InProcessEventBus:
    """Calls each subscriber in turn; one that fails is logged and does not stop the rest."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; the returned function removes it again."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    async def publish(self, event: DomainEvent) -> None:
        for subscriber in list(self._subscribers):
            try:
                await subscriber(event)
            except Exception:
                log.exception("a subscriber failed on %s", event.name)
