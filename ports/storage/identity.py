"""Users, their login sessions and tokens, and sign-in throttling."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from app.domain.access import Scope
from app.domain.cabinets import Cabinet
from app.domain.paging import PageRequest
from app.domain.sessions import LoginSession
from app.domain.users import User


class UserRepository(Protocol):
    async def add(self, user: User) -> None:
        """Insert; DuplicateKey("users.email_key") when the e-mail is taken."""

    async def get(self, user_id: str, scope: Scope, *, for_update: bool = False) -> User | None:
        """A live (not deleted) user whose cabinet is in scope; `for_update` locks the row
        until the unit of work ends, so concurrent changes do not overwrite each other."""

    async def get_by_email_key(self, key: str) -> User | None:
        """A live user by lower-cased e-mail, whatever their cabinet: for sign-in only."""

    async def list_in_cabinet(self, cabinet_id: str, scope: Scope, page: PageRequest,
                              search: str = "") -> list[User]:
        """Its live users, paged by id or numbered in the order of one of `USER_SORTS`;
        `search`: a part of the name or of the e-mail address."""

    async def count_in_cabinet(self, cabinet_id: str, scope: Scope, search: str = "") -> int:
        """How many `list_in_cabinet` pages through."""

    async def update(self, user: User) -> None:
        """Write every mutable field (name, role, active, password hash, deletion)."""

    async def mark_signed_in(self, user_id: str, at: datetime) -> None:
        """Note a sign-in; nothing else of the user is written (an administrator may be
        changing it at the same moment)."""


class SessionRepository(Protocol):
    async def add(self, session: LoginSession) -> None: ...

    async def get(self, session_id: str) -> LoginSession | None: ...

    async def signed_in(self, session_id: str, user_id: str
                        ) -> tuple[LoginSession, User, Cabinet] | None:
        """The session with its live (not deleted) user, who must be `user_id`, and the
        user's cabinet, in one read: what every authenticated request checks."""

    async def revoke(self, session_id: str, at: datetime) -> None: ...

    async def revoke_all_of_user(self, user_id: str, at: datetime) -> None: ...

    async def add_refresh_token(self, jti: str, session_id: str, expires_at: datetime) -> None: ...

    async def use_refresh_token(self, jti: str, session_id: str, at: datetime) -> bool:
        """Mark the token used. False when it was used before or is unknown: exactly one of
        several concurrent callers with the same token gets True."""

    async def refresh_token_used_at(self, jti: str, session_id: str) -> datetime | None:
        """When the token was spent; None if it is unknown or unspent."""

    async def add_password_token(self, token_hash: str, user_id: str, expires_at: datetime,
                                 created_at: datetime) -> None: ...

    async def password_links_since(self, user_id: str, since: datetime) -> int:
        """How many set-password links the user was given since then, used or not."""

    async def drop_password_tokens(self, user_id: str) -> None:
        """Cancel the user's unused set-password links (a password was set, or the user
        was deactivated or removed)."""

    async def password_token_user(self, token_hash: str, at: datetime) -> str | None:
        """The user id of an unused, unexpired password token, without spending it."""

    async def use_password_token(self, token_hash: str, at: datetime) -> str | None:
        """Consume a one-time password token; its user id, or None if unknown, used or expired."""


class LoginThrottleRepository(Protocol):
    """Sign-in attempts per key (an account or an address) in fixed windows."""

    async def hit(self, key: str, now: datetime, expired: datetime) -> tuple[int, datetime]:
        """Count one attempt; a window that began at or before `expired` starts afresh at
        `now`. The attempts of the current window, this one included, and when the window
        began. Atomic: concurrent callers each get a different count."""

    async def forgive(self, key: str) -> None:
        """Take one attempt back (it turned out to be a successful sign-in)."""

    async def reset(self, key: str) -> None: ...

    async def prune(self, before: datetime) -> None:
        """Forget windows that began before `before`."""
