"""E-mail: composing messages from templates/email/, and the outbox worker that sends
what the outbox holds, retrying temporary failures with backoff and giving up on
permanent ones."""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address
from pathlib import Path
from urllib.parse import urlsplit

import jinja2

from app.domain.notifications import Message, NotificationKind
from app.domain.outbox import MAX_ATTEMPTS, OutboxMessage, retry_delay
from app.services.background import QueueFigures, repeat
from ports.mail import Email, Mailer, PermanentMailError, TemporaryMailError
from ports.storage import Storage
from ports.system import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MailPolicy:
    sender: str
    base_url: str
    brand: str
    templates: Path


class EmailComposer:
    def __init__(self, policy: MailPolicy) -> None:
        self._policy = policy
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(policy.templates / "email"),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",),
                                                default_for_string=False, default=False))
        self._domain = urlsplit(policy.base_url).hostname or "portal.invalid"
        self._notification_bodies = functools.lru_cache(maxsize=32)(self._render_notification)

    def notification(self, key: str, to_email: str, to_name: str, message: Message,
                     at: datetime) -> OutboxMessage:
        """A notification as e-mail; `key` (the notification's id) makes its Message-ID,
        the same on every attempt. The text is the same for every recipient: rendered
        once for an announcement to thousands."""
        text, html = self._notification_bodies(message)
        return self._message(key, to_email, to_name, message.title, text, html, at)

    def _render_notification(self, message: Message) -> tuple[str, str]:
        link = message.link
        if link and link.startswith("/"):
            link = self._base_url + link
        return self._render("notification", message.title, {
            "body": message.body, "link": link, "kind_label": message.kind.label,
            "security": message.kind is NotificationKind.SECURITY_PUBLISHED})

    def invitation(self, key: str, to_email: str, to_name: str, inviter: str, cabinet: str,
                   link: str, expires_at: datetime, at: datetime) -> OutboxMessage:
        """The set-password link for a new user."""
        return self._compose(
            "invitation", key, to_email, to_name,
            f"Your account in the {self._policy.brand} customer portal", at,
            {"inviter": inviter, "cabinet": cabinet, "email": to_email, "link": link,
             "expires": expires_at.strftime("%d %B %Y, %H:%M UTC")})

    def password_link(self, key: str, to_email: str, to_name: str, link: str,
                      expires_at: datetime, at: datetime, *, new_account: bool,
                      asked: bool) -> OutboxMessage:
        """A set-password link: for a user who never set a password, or a new one; `asked`:
        someone asked on the sign-in page (else an administrator sent it)."""
        subject = (f"Choose your password for the {self._policy.brand} customer portal"
                   if new_account else f"Your new password for the {self._policy.brand} "
                                       "customer portal")
        return self._compose(
            "password_link", key, to_email, to_name, subject, at,
            {"email": to_email, "link": link, "new_account": new_account, "asked": asked,
             "expires": expires_at.strftime("%d %B %Y, %H:%M UTC")})

    def report_link(self, key: str, to_email: str, to_name: str, report: str,
                    organisation: str, cadence: str, fmt: str, link: str,
                    expires_at: datetime, at: datetime) -> OutboxMessage:
        """A scheduled report is ready: a link to it, never the file."""
        return self._compose(
            "report", key, to_email, to_name, f"Your {cadence} report: {report}, "
                                              f"{organisation}", at,
            {"report": report, "organisation": organisation, "cadence": cadence,
             "format": fmt, "link": link,
             "expires": expires_at.strftime("%d %B %Y, %H:%M UTC")})

    @property
    def brand(self) -> str:
        return self._policy.brand

    @property
    def _base_url(self) -> str:
        return self._policy.base_url.rstrip("/")

    def _compose(self, template: str, key: str, to_email: str, to_name: str, subject: str,
                 at: datetime, values: dict[str, object]) -> OutboxMessage:
        text, html = self._render(template, subject, values)
        return self._message(key, to_email, to_name, subject, text, html, at)

    def _render(self, template: str, subject: str, values: dict[str, object]
                ) -> tuple[str, str]:
        values = {"title": subject, "brand": self._policy.brand, "base_url": self._base_url,
                  **values}
        return (self._env.get_template(f"{template}.txt").render(values),
                self._env.get_template(f"{template}.html").render(values))

    def _message(self, key: str, to_email: str, to_name: str, subject: str, text: str,
                 html: str, at: datetime) -> OutboxMessage:
        return OutboxMessage(
            id=key, message_id=f"<{key}@{self._domain}>",
            recipient=recipient(to_name, to_email),
            subject=subject, text_body=text, html_body=html, created_at=at,
            next_attempt_at=at)


def recipient(name: str, address: str) -> str:
    """A To header's value; a name with a comma, quotes or angle brackets is quoted, so it
    never reads as a second address."""
    if not name:
        return address
    username, _, domain = address.rpartition("@")
    return str(Address(display_name=name, username=username, domain=domain))


@dataclass(frozen=True)
class OutboxPolicy:
    # Messages tried in one round, each leased on its own just before it is sent.
    batch: int = 20
    max_attempts: int = MAX_ATTEMPTS
    base_delay: float = 5.0
    max_delay: float = 3600.0


class OutboxWorker:
    def __init__(self, storage: Storage, mailer: Mailer, clock: Clock, sender: str,
                 policy: OutboxPolicy) -> None:
        self._storage = storage
        self._mailer = mailer
        self._clock = clock
        self._sender = sender
        self._policy = policy
        self.wake = asyncio.Event()
        self._figures = QueueFigures("sent", "failed", "retried")

    def stats(self) -> dict[str, float]:
        return self._figures.stats()

    async def measure(self) -> None:
        """How many messages wait to be sent, and how long the oldest has waited."""
        async with self._storage.unit_of_work(read_only=True) as uow:
            waiting, oldest = await uow.outbox.backlog()
        self._figures.measured(waiting, oldest, self._clock.now())

    async def run_once(self) -> int:
        """Send what is due now, one message leased at a time; how many were tried.

        A lease covers one message for as long as its send can take at the most (the
        mailer says how long, all its waits included) and a margin: another process never
        takes over a message still being sent. Only a process that dies mid-send leaves
        one to be sent again once its lease ends: then at most one duplicate arrives,
        with the same Message-ID."""
        lease = timedelta(seconds=self._mailer.longest_send * 1.2 + 30)
        tried = 0
        while tried < self._policy.batch:
            now = self._clock.now()
            async with self._storage.unit_of_work() as uow:
                claimed = await uow.outbox.claim(now, now + lease, 1)
                await uow.commit()
            if not claimed:
                break
            await self._deliver(claimed[0])
            tried += 1
        return tried

    async def _deliver(self, message: OutboxMessage) -> None:
        policy = self._policy
        attempts = message.attempts + 1
        try:
            await self._mailer.send(Email(message.message_id, self._sender, message.recipient,
                                          message.subject, message.text_body,
                                          message.html_body))
        except PermanentMailError as exc:
            log.error("e-mail %s to %s refused for good: %s", message.message_id,
                      message.recipient, exc)
            async with self._storage.unit_of_work() as uow:
                await uow.outbox.mark_failed(message.message_id, attempts, str(exc))
                await uow.commit()
            self._figures.count("failed")
            return
        except TemporaryMailError as exc:
            async with self._storage.unit_of_work() as uow:
                if attempts >= policy.max_attempts:
                    log.error("e-mail %s to %s given up after %d attempts: %s",
                              message.message_id, message.recipient, attempts, exc)
                    await uow.outbox.mark_failed(message.message_id, attempts, str(exc))
                    self._figures.count("failed")
                else:
                    later = self._clock.now() + retry_delay(
                        attempts, base=policy.base_delay, cap=policy.max_delay)
                    log.warning("e-mail %s to %s not sent (attempt %d), again at %s: %s",
                                message.message_id, message.recipient, attempts,
                                later.isoformat(timespec="seconds"), exc)
                    await uow.outbox.retry_later(message.message_id, attempts, later, str(exc))
                    self._figures.count("retried")
                await uow.commit()
            return
        async with self._storage.unit_of_work() as uow:
            await uow.outbox.mark_sent(message.message_id, self._clock.now())
            await uow.commit()
        self._figures.count("sent")

    async def run_forever(self, interval: float) -> None:
        """Send now and then, and at once when woken; a database outage is logged and
        waited out."""
        await repeat("outbox", self._send_due, interval, self.wake)

    async def _send_due(self) -> None:
        while await self.run_once() == self._policy.batch:
            pass  # more are waiting
