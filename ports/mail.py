"""Mailer port: hand one finished message to whatever delivers mail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Email:
    """A message ready to send: both bodies, and a Message-ID that stays the same on every
    attempt, so a receiver can tell a retry from a new message."""

    message_id: str
    sender: str
    to: str
    subject: str
    text: str
    html: str | None = None


class MailError(Exception):
    """Delivery failed."""


class TemporaryMailError(MailError):
    """Try again later: the server is unreachable, timed out, or answered 4xx."""


class PermanentMailError(MailError):
    """Trying again will not help: the server answered 5xx (such as an unknown recipient)."""


class Mailer(Protocol):
    @property
    def longest_send(self) -> float:
        """Seconds one `send` can take at the most, waits and all: the outbox leases a
        message at least this long, so that nobody else sends it meanwhile."""

    async def send(self, email: Email) -> None:
        """Deliver the message or raise TemporaryMailError / PermanentMailError."""

    async def probe(self) -> str:
        """Whether mail can go out now (the server greets, the folder is writable): what
        was found, or TemporaryMailError. For operators (`portal check`)."""
