"""Notifications: what a user is told, in the portal and by e-mail, and what they want."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class NotificationKind(StrEnum):
    RELEASE_PUBLISHED = "release.published"
    SECURITY_PUBLISHED = "security.published"
    LICENSE_EXPIRING = "license.expiring"
    CERTIFICATE_EXPIRING = "certificate.expiring"
    LICENSE_EXPIRED = "license.expired"
    CERTIFICATE_EXPIRED = "certificate.expired"
    LICENSE_ISSUED = "license.issued"
    LICENSE_RENEWED = "license.renewed"
    LICENSE_REVOKED = "license.revoked"
    LICENSE_TRANSFERRED = "license.transferred"
    CERTIFICATE_TRANSFERRED = "certificate.transferred"
    ISSUE_OPENED = "issue.opened"
    ISSUE_UPDATED = "issue.updated"
    ISSUE_COMMENTED = "issue.commented"
    ANNOUNCEMENT = "announcement"
    USER_INVITED = "user.invited"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    NotificationKind.RELEASE_PUBLISHED: "New versions and updates",
    NotificationKind.SECURITY_PUBLISHED: "Security fixes",
    NotificationKind.LICENSE_EXPIRING: "Licenses about to expire",
    NotificationKind.CERTIFICATE_EXPIRING: "Support certificates about to expire",
    NotificationKind.LICENSE_EXPIRED: "Licenses that expired",
    NotificationKind.CERTIFICATE_EXPIRED: "Support certificates that expired",
    NotificationKind.LICENSE_ISSUED: "New licenses and certificates",
    NotificationKind.LICENSE_RENEWED: "Licenses and certificates renewed",
    NotificationKind.LICENSE_REVOKED: "Licenses and certificates revoked",
    NotificationKind.LICENSE_TRANSFERRED: "Licenses transferred",
    NotificationKind.CERTIFICATE_TRANSFERRED: "Support certificates transferred",
    NotificationKind.ISSUE_OPENED: "New support requests (staff)",
    NotificationKind.ISSUE_UPDATED: "Support requests changed",
    NotificationKind.ISSUE_COMMENTED: "Replies to support requests",
    NotificationKind.ANNOUNCEMENT: "Announcements",
    NotificationKind.USER_INVITED: "Invitations",
}


@dataclass(frozen=True)
class Message:
    """What a notification says, the same for every recipient of it."""

    kind: NotificationKind
    title: str
    body: str
    link: str | None = None


@dataclass
class Notification:
    id: str
    user_id: str
    # The portal-wide position it was made at: positions rise in the order notifications
    # were committed, so a live stream resumes after one. A user's are not consecutive.
    seq: int
    kind: NotificationKind
    title: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None = None


@dataclass(frozen=True)
class Batch:
    """One message to many users, made at one position. An announcement to thousands is
    stored as one batch when it is made, and the live streams get it at once; each user's
    notification (and the e-mail) is written from it just after."""

    position: int
    id: str
    message: Message
    created_at: datetime
    users: tuple[str, ...]     # who see it in the portal
    audience: tuple[str, ...]  # who were addressed: those whose e-mail it may go to

    def notification_id(self, user_id: str) -> str:
        return notification_id(self.id, user_id)

    def notification(self, user_id: str) -> Notification:
        m = self.message
        return Notification(id=self.notification_id(user_id), user_id=user_id,
                            seq=self.position, kind=m.kind, title=m.title, body=m.body,
                            link=m.link, created_at=self.created_at)


_IDS = uuid.UUID("5d1f8a52-6c1e-4c4e-9a57-0c4b1d7f3e21")


def notification_id(batch_id: str, user_id: str) -> str:
    """Each recipient's notification id, derived from the batch's: the same wherever and
    whenever it is worked out, so nothing has to carry thousands of ids. It is
    `uuid.uuid5(_IDS, f"{batch_id}/{user_id}")`, formatted here: going through the UUID
    class costs three times as much, thousands of times over."""
    h = hashlib.sha1(_IDS.bytes + f"{batch_id}/{user_id}".encode(),
                     usedforsecurity=False).hexdigest()  # as uuid5: a name, not a secret
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


# RFC 9562's variant bits (10) over the hash's: the first hex digit of the fourth group.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


@dataclass(frozen=True)
class Preference:
    in_app: bool = True
    email: bool = True


def preferences(stored: dict[NotificationKind, Preference]) -> dict[NotificationKind, Preference]:
    """Every kind, with what the user chose where they chose, else both channels on."""
    return {kind: stored.get(kind, Preference()) for kind in NotificationKind}
