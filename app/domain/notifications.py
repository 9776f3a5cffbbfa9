"""Notifications: what a user is told, in the portal and by e-mail, and what they want."""

from __future__ import annotations

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
    LICENSE_TRANSFERRED = "license.transferred"
    CERTIFICATE_TRANSFERRED = "certificate.transferred"
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
    NotificationKind.LICENSE_TRANSFERRED: "Licenses transferred",
    NotificationKind.CERTIFICATE_TRANSFERRED: "Support certificates transferred",
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
    # 1, 2, 3... per user, in the order they were committed: a live stream resumes after one.
    seq: int
    kind: NotificationKind
    title: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None = None


@dataclass(frozen=True)
class Preference:
    in_app: bool = True
    email: bool = True


def preferences(stored: dict[NotificationKind, Preference]) -> dict[NotificationKind, Preference]:
    """Every kind, with what the user chose where they chose, else both channels on."""
    return {kind: stored.get(kind, Preference()) for kind in NotificationKind}
