"""Webhook signatures: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`, the way
the purchases feed and the support feed are signed."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from app.domain.errors import DomainError, Unauthenticated

BAD_SIGNATURE = "The request is not signed by the sending system."
# Seconds since 1970 have ten digits until the year 2286: any more is no timestamp.
_MAX_DIGITS = 11


class FeedDisabled(DomainError):
    status = 503
    slug = "service-unavailable"
    title = "Feed not configured"


def check_signature(secret: str, header: str | None, body: bytes, now: datetime,
                    tolerance_seconds: int) -> None:
    """Unauthenticated unless `header` signs `body` with `secret`, no further than the
    tolerance from `now`."""
    parts = dict(part.split("=", 1) for part in (header or "").split(",") if "=" in part)
    stamp, given = parts.get("t", "").strip(), parts.get("v1", "")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > _MAX_DIGITS or not given:
        raise Unauthenticated(BAD_SIGNATURE)
    if abs(now.timestamp() - int(stamp)) > tolerance_seconds:
        raise Unauthenticated("The signature's timestamp is too far from now.")
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode()):
        raise Unauthenticated(BAD_SIGNATURE)
