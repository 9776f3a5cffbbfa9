"""The e-mail outbox: messages queued with the change that causes them, sent by a worker."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from app.domain.outbox import OutboxMessage


class OutboxRepository(Protocol):
    async def add(self, *messages: OutboxMessage) -> None:
        """Queue messages; a Message-ID already queued is left as it is."""

    async def claim(self, now: datetime, lease_until: datetime,
                    limit: int) -> list[OutboxMessage]:
        """Pending messages due by `now` and not leased, leased to the caller until
        `lease_until`, oldest first. Concurrent claimers never get the same message."""

    async def mark_sent(self, message_id: str, at: datetime) -> None:
        """Sent. Its text is forgotten (an invitation's holds a set-password link);
        recipient, subject and times stay."""

    async def retry_later(self, message_id: str, attempts: int, at: datetime,
                          error: str) -> None:
        """Count a failed attempt and try again at `at`."""

    async def mark_failed(self, message_id: str, attempts: int, error: str) -> None:
        """Give up on it, keeping the reason; its text is forgotten as when sent."""

    async def get(self, message_id: str) -> OutboxMessage | None: ...

    async def backlog(self) -> tuple[int, datetime | None]:
        """How many messages wait to be sent (pending), and when the oldest of them was
        queued (None: none waits). Retries move a message's due time on; its age goes on
        growing."""

    async def list_recent(self, limit: int, recipient: str = "") -> list[OutboxMessage]:
        """Newest first: for staff who check what was sent; `recipient`: only those whose
        recipient contains it (case-insensitive)."""
