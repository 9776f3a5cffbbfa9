"""Bodies of the notifications API and its live stream."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.domain.notifications import Notification, NotificationKind, Preference
from app.web.schemas.common import Body, ListQuery, Out


class NotificationOut(Out):
    id: str
    seq: int = Field(description="Its position: positions rise portal-wide in the order "
                                 "notifications were made, so a user's are rising but not "
                                 "consecutive; the SSE event id.")
    kind: NotificationKind
    title: str
    body: str
    link: str | None
    created_at: datetime
    read: bool
    read_at: datetime | None

    @classmethod
    def of(cls, n: Notification) -> NotificationOut:
        return cls(id=n.id, seq=n.seq, kind=n.kind, title=n.title, body=n.body,
                   link=n.link, created_at=n.created_at, read=n.read_at is not None,
                   read_at=n.read_at)


class NotificationPage(Out):
    items: list[NotificationOut]
    next_cursor: str | None
    unread_count: int


class NotificationQuery(ListQuery):
    unread: bool = Field(False, description="Only the unread ones.")


class NotificationPatch(Body):
    read: bool


class ReadAllOut(Out):
    marked: int = Field(description="How many were unread.")


class AnnouncementIn(Body):
    title: str = Field(min_length=1, max_length=200, pattern=r"\S")
    body: str = Field(min_length=1, max_length=5000, pattern=r"\S")
    link: str | None = Field(None, max_length=500, pattern=r"^(/|https://)\S*$",
                             description="A portal path or an https address.")
    cabinet_id: str | None = Field(None, max_length=100,
                                   description="Only this cabinet's users.")
    product_id: str | None = Field(None, max_length=100,
                                   description="Only users of cabinets licensed for it.")


class AnnouncementOut(Out):
    recipients: int


class NotificationSettingIn(Body):
    kind: NotificationKind
    in_app: bool
    email: bool


class NotificationSettingOut(Out):
    kind: NotificationKind
    label: str
    in_app: bool
    email: bool


class NotificationSettingsIn(Body):
    items: list[NotificationSettingIn] = Field(max_length=50)


class NotificationSettingsOut(Out):
    items: list[NotificationSettingOut]

    @classmethod
    def of(cls, chosen: dict[NotificationKind, Preference]) -> NotificationSettingsOut:
        return cls(items=[NotificationSettingOut(kind=kind, label=kind.label,
                                                 in_app=p.in_app, email=p.email)
                          for kind, p in chosen.items()])


class StreamQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    last_event_id: int | None = Field(None, ge=0, alias="lastEventId",
                                      description="As the Last-Event-ID header, for clients "
                                                  "that cannot set headers.")
