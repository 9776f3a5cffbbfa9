"""Support requests: what a customer asks, the conversation about it, and how fast it is
answered. The portal keeps its own record of every request, whatever helpdesk works it."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from app.domain.errors import Invalid, UnsupportedType

NUMBER_PATTERN = r"^SR-\d{4}-\d{6}$"
MAX_SUBJECT, MAX_DESCRIPTION, MAX_COMMENT = 200, 20_000, 20_000
MAX_FILENAME = 150


class IssueStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    WAITING = "waiting_for_customer"
    ON_HOLD = "on_hold"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return _STATUS_LABELS[self]

    @property
    def done(self) -> bool:
        """Resolved or closed: nothing is awaited of the vendor any more."""
        return self in (IssueStatus.RESOLVED, IssueStatus.CLOSED)


_STATUS_LABELS = {IssueStatus.NEW: "New", IssueStatus.OPEN: "Open",
                  IssueStatus.WAITING: "Waiting for you", IssueStatus.ON_HOLD: "On hold",
                  IssueStatus.RESOLVED: "Resolved", IssueStatus.CLOSED: "Closed"}


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Delivery(StrEnum):
    """Where the portal's copy stands against the helpdesk's."""

    PENDING = "pending"      # committed here, not yet in the helpdesk
    DELIVERED = "delivered"
    FAILED = "failed"        # given up on; staff see why


@dataclass(frozen=True)
class ResponseTargets:
    """How soon a support level is answered and resolved."""

    first_response: timedelta
    resolution: timedelta


@dataclass(frozen=True)
class SlaPolicy:
    """The response targets of each support level; `fallback` for a level not listed."""

    levels: dict[str, ResponseTargets]
    fallback: ResponseTargets

    def targets(self, level: str) -> ResponseTargets:
        return self.levels.get(level.lower(), self.fallback)


@dataclass
class SupportIssue:
    id: str
    number: str
    cabinet_id: str
    author_id: str | None
    author_name: str
    product_id: str
    # The certificate that opened the gate, and its level; a license it may name.
    certificate_id: str
    level: str
    license_id: str | None
    subject: str
    description: str
    status: IssueStatus
    priority: Priority
    assignee_id: str | None
    created_at: datetime
    updated_at: datetime
    first_response_due: datetime
    resolution_due: datetime
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    # The helpdesk's ticket, its own status word, and how delivery stands.
    external_id: str | None = None
    external_status: str | None = None
    delivery: Delivery = Delivery.PENDING
    delivery_error: str | None = None

    def breached(self, now: datetime) -> bool:
        """A target missed: no first response in time, or not resolved in time."""
        answered = self.first_response_at or now
        resolved = self.resolved_at or now
        return answered > self.first_response_due or resolved > self.resolution_due

    def answered_in(self) -> timedelta | None:
        return None if self.first_response_at is None else \
            self.first_response_at - self.created_at


@dataclass(frozen=True)
class IssueListing:
    """A request as lists show it, with the names they show beside it."""

    issue: SupportIssue
    product_name: str
    cabinet_name: str


@dataclass
class Comment:
    id: str
    issue_id: str
    # None for an agent of an external helpdesk, who has no account here.
    author_id: str | None
    author_name: str
    # Whether the author works for the vendor: their public replies are the answers.
    by_staff: bool
    body: str
    # False: an internal note, which no customer ever sees.
    public: bool
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    external_id: str | None = None
    delivery: Delivery = Delivery.PENDING


@dataclass
class Attachment:
    id: str
    issue_id: str
    comment_id: str | None
    uploader_id: str | None
    by_staff: bool
    filename: str
    content_type: str
    size: int
    sha256: str
    # Where its bytes are: a key the portal made, never the file's own name.
    bucket: str
    key: str
    created_at: datetime
    deleted_at: datetime | None = None
    external_id: str | None = None
    delivery: Delivery = Delivery.PENDING


class DeliveryKind(StrEnum):
    TICKET = "ticket"          # a new request
    UPDATE = "update"          # its subject, description, status or priority changed here
    COMMENT = "comment"
    ATTACHMENT = "attachment"


@dataclass
class SupportDelivery:
    """One thing to hand to the helpdesk: `object_id` is the request, comment or file."""

    id: str
    issue_id: str
    kind: DeliveryKind
    object_id: str
    created_at: datetime
    next_attempt_at: datetime
    attempts: int = 0
    status: Delivery = Delivery.PENDING
    last_error: str | None = None


@dataclass(frozen=True)
class IssueFilter:
    status: IssueStatus | None = None
    product_id: str | None = None
    # Part of the subject, or the number.
    text: str | None = None
    # Not resolved or closed: what is still to be done.
    active: bool = False
    assignee_id: str | None = None
    unassigned: bool = False


@dataclass(frozen=True)
class IssueChanges:
    """None leaves a field as it is; `unassign` clears the assignee."""

    subject: str | None = None
    description: str | None = None
    status: IssueStatus | None = None
    priority: Priority | None = None
    assignee_id: str | None = None
    unassign: bool = False


@dataclass(frozen=True)
class TicketState:
    """What a helpdesk says of a ticket now, in the portal's words."""

    external_id: str
    status: IssueStatus
    raw_status: str
    priority: Priority | None
    comments: list[ExternalComment] = field(default_factory=list)
    # The portal's other statuses the helpdesk's word stands for as well (its one "Open"
    # is the portal's new, open and waiting for customer): none of them is a change.
    covers: frozenset[IssueStatus] = frozenset()

    def means(self, status: IssueStatus) -> bool:
        return status is self.status or status in self.covers


@dataclass(frozen=True)
class ExternalComment:
    external_id: str
    author_name: str
    body: str
    public: bool
    at: datetime
    # Set when the portal itself put it there (a customer's comment delivered).
    portal_id: str | None = None
    attachments: tuple[ExternalFile, ...] = ()


@dataclass(frozen=True)
class ExternalFile:
    external_id: str
    filename: str
    content_type: str
    size: int


# What a file is taken to be, by its name's extension: never what the client claims.
MEDIA_TYPES = {
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
    "webp": "image/webp", "pdf": "application/pdf", "txt": "text/plain", "log": "text/plain",
    "csv": "text/csv", "json": "application/json", "har": "application/json",
    "xml": "application/xml", "yaml": "application/yaml", "yml": "application/yaml",
    "zip": "application/zip", "gz": "application/gzip", "tgz": "application/gzip",
    "tar": "application/x-tar", "7z": "application/x-7z-compressed",
}


def media_type(filename: str, allowed: frozenset[str]) -> str:
    """The media type of an accepted file; UnsupportedType for any other."""
    extension = filename.rpartition(".")[2].lower() if "." in filename else ""
    if extension not in allowed or extension not in MEDIA_TYPES:
        kinds = ", ".join(sorted(allowed & MEDIA_TYPES.keys()))
        raise UnsupportedType(f"Files of this type are not accepted; send one of: {kinds}.",
                              field="file")
    return MEDIA_TYPES[extension]


def number_for(year: int, serial: int) -> str:
    return f"SR-{year:04d}-{serial:06d}"


def check_subject(subject: str) -> str:
    cleaned = " ".join(subject.split())
    if not cleaned:
        raise Invalid("Say in a few words what the request is about.", field="subject")
    if len(cleaned) > MAX_SUBJECT:
        raise Invalid(f"A subject has at most {MAX_SUBJECT} characters.", field="subject")
    return cleaned


def check_text(text: str, what: str, limit: int) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise Invalid("Write something first.", field=what)
    if len(cleaned) > limit:
        raise Invalid(f"At most {limit:,} characters.", field=what)
    if "\x00" in cleaned:
        raise Invalid("The text contains a NUL character.", field=what)
    return cleaned


_UNSAFE = re.compile(r"[^\w .()+,=@-]")


def safe_filename(name: str) -> str:
    """A file name fit to show and to offer for download: the last part of whatever path
    was sent, no control or path characters, not hidden, not empty, not too long."""
    base = re.split(r"[/\\]", unicodedata.normalize("NFC", name))[-1]
    cleaned = _UNSAFE.sub("_", "".join(c for c in base if c.isprintable())).strip(" .")
    if len(cleaned) > MAX_FILENAME:
        stem, dot, suffix = cleaned.rpartition(".")
        cleaned = (stem[:MAX_FILENAME - len(suffix) - 1] + "." + suffix) if dot and \
            len(suffix) <= 10 else cleaned[:MAX_FILENAME]
    return cleaned or "attachment"


def transitions_for_customers(current: IssueStatus, wanted: IssueStatus) -> bool:
    """A customer closes a request, or reopens one that is done or waiting on them."""
    if wanted is IssueStatus.CLOSED:
        return current is not IssueStatus.CLOSED
    if wanted is IssueStatus.OPEN:
        return current.done or current is IssueStatus.WAITING
    return False


def due(created: datetime, targets: ResponseTargets) -> tuple[datetime, datetime]:
    return created + targets.first_response, created + targets.resolution


def valid_on(valid_from: date, valid_to: date | None, day: date) -> bool:
    return valid_from <= day and (valid_to is None or day <= valid_to)
