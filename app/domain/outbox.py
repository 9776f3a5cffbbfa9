"""E-mail waiting in the outbox, and how long to wait before trying one again."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass
class OutboxMessage:
    id: str
    message_id: str
    recipient: str
    subject: str
    text_body: str
    html_body: str | None
    created_at: datetime
    status: OutboxStatus = OutboxStatus.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    sent_at: datetime | None = None


MAX_ATTEMPTS = 10


def retry_delay(attempts: int, *, base: float = 5.0, cap: float = 3600.0,
                jitter: random.Random | None = None) -> timedelta:
    """Exponential backoff with full jitter: a random wait up to base * 2^(attempts-1),
    capped, so a crowd of retries after an outage does not come back all at once."""
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=(jitter or random).uniform(ceiling / 2, ceiling))
