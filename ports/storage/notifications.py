"""Notifications: positions, held batches, read marks, settings and recipients."""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

from app.domain.notifications import Batch, Notification, NotificationKind, Preference
from app.domain.paging import PageRequest


class NotificationRepository(Protocol):
    """A user's notifications. Every method takes the owner: nobody reaches another's."""

    async def next_position(self) -> int:
        """Take the portal's next notification position. Until this transaction ends,
        whoever takes the one after waits: positions are committed in the order taken."""

    async def position(self) -> int:
        """The newest position taken and committed (0 before the first)."""

    async def write(self, batch: Batch) -> None:
        """The batch's notification for each of its users, at its position."""

    async def hold(self, batch: Batch) -> None:
        """Keep a batch to be written later (see `held`)."""

    async def held(self, limit: int) -> list[Batch]:
        """The batches kept and not yet released, oldest first, locked until this
        transaction ends: two writers never write one twice."""

    async def waiting_for(self, user_id: str, up_to: int) -> list[Batch]:
        """`waiting`, only those for this user, each with this user alone."""

    async def waiting(self, up_to: int) -> list[Batch]:
        """The batches held and not yet written, up to position `up_to`, without locking
        them: a reader counts them in instead of waiting for them."""

    async def release(self, position: int) -> None:
        """Forget a held batch, once written."""

    async def since(self, position: int, up_to: int, user_ids: list[str],
                    limit: int) -> list[Notification]:
        """These users' notifications from `position` to `up_to`, in position order (at
        most `limit`): what live streams missed when the event bus lost a message."""

    async def list_for_user(self, user_id: str, page: PageRequest, unread_only: bool = False,
                            up_to: int = ..., below: int | None = None,
                            kind: NotificationKind | None = None) -> list[Notification]:
        """Newest first, paged by the last id seen (or only those below position `below`);
        none past position `up_to`; only of `kind`, if given."""

    async def count_for_user(self, user_id: str, up_to: int = ..., unread_only: bool = False,
                             kind: NotificationKind | None = None) -> int:
        """How many `list_for_user` pages through."""

    async def position_of(self, user_id: str, notification_id: str) -> int | None:
        """The position of one of the user's notifications (None if not theirs)."""

    async def after(self, user_id: str, seq: int, limit: int,
                    up_to: int = ...) -> list[Notification]:
        """Those after position `seq` up to `up_to`, oldest first: what a reconnecting
        stream missed."""

    async def unread_count(self, user_id: str, up_to: int = ...,
                           excluding: tuple[int, ...] = ()) -> int:
        """Unread up to position `up_to`, not counting those at the `excluding` positions."""

    async def set_read(self, user_id: str, notification_id: str,
                       at: datetime | None) -> Notification | None:
        """Mark read (at) or unread (None); the notification, or None if not theirs."""

    async def read_all(self, user_id: str, at: datetime) -> int: ...

    async def delete(self, user_id: str, notification_id: str) -> bool: ...

    async def preferences(self, user_id: str) -> dict[NotificationKind, Preference]:
        """Only what the user chose; kinds left out keep their defaults."""

    async def set_preferences(self, user_id: str,
                              chosen: dict[NotificationKind, Preference]) -> None: ...

    async def muted(self, kind: NotificationKind) -> set[str]:
        """Users who turned this kind off in the portal."""

    async def recipients_in(self, cabinet_ids: list[str]) -> list[str]:
        """Active users of these cabinets."""

    async def recipients_licensed(self, product_id: str, on: date, today: date) -> list[str]:
        """Active users of the cabinets holding a non-revoked license of the product valid
        on `on` or `today`: those entitled to a release published on `on`."""

    async def mail_targets(self, user_ids: list[str],
                           kind: NotificationKind) -> list[tuple[str, str, str]]:
        """(user id, e-mail, name) of those users, active, who did not turn e-mail off for
        this kind."""

    async def recipients_all(self) -> list[str]:
        """Every active user."""

    async def recipients_staff(self) -> list[str]:
        """Every active user of the vendor's staff."""
