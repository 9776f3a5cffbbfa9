"""Login sessions: a family of rotating refresh tokens, and one-time password tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class LoginSession:
    """One login. Its refresh tokens form a family; revoking the session ends them all."""

    id: str
    user_id: str
    created_at: datetime
    # Absolute end: no refresh takes the session past this, however often it rotates.
    expires_at: datetime
    revoked_at: datetime | None = None

    def is_live(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str
