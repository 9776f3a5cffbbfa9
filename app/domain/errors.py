"""Errors the core raises; the web layer turns each into one problem type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class DomainError(Exception):
    """Base of every error a use case reports to its caller."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    def each(self) -> list[DomainError]:
        """Every broken rule this error reports: itself, or (InvalidFields) several."""
        return [self]


class BadRequest(DomainError):
    """A query or parameter names something that does not exist or cannot be read."""


class NotFound(DomainError):
    """The object does not exist, or it lies outside the caller's reach (never 403 then)."""

    status = 404
    slug = "not-found"
    title = "Not found"


class Forbidden(DomainError):
    """The caller can see the object but may not do this to it."""

    status = 403
    slug = "forbidden"
    title = "Forbidden"


class Unauthenticated(DomainError):
    """No valid credentials; the answer is the same whatever was wrong with them."""

    status = 401
    slug = "unauthenticated"
    title = "Authentication required"


class Conflict(DomainError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class TooLarge(DomainError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class SlowRequest(DomainError):
    status = 408
    slug = "request-timeout"
    title = "Request timeout"


class UnsupportedType(DomainError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class Invalid(DomainError):
    """Input that parses but breaks a rule; `field` names the offending field."""

    status = 422
    slug = "validation-error"
    title = "Invalid input"


class InvalidFields(Invalid):
    """Several fields break rules at once: a form shows them all, not one per attempt."""

    def __init__(self, broken: list[Invalid]) -> None:
        super().__init__(" ".join(exc.detail for exc in broken), field=broken[0].field)
        self.broken = broken

    def each(self) -> list[DomainError]:
        return list(self.broken)


class Checks:
    """Runs rule checks one after another and keeps every broken one, then `done()` raises
    them together."""

    def __init__(self) -> None:
        self._broken: list[Invalid] = []

    def __call__(self, check: Callable[..., T], *args: Any) -> T:
        try:
            return check(*args)
        except Invalid as exc:
            self._broken.append(exc)
            return args[0]  # type: ignore[no-any-return]  # never used: done() raises

    def done(self) -> None:
        if len(self._broken) == 1:
            raise self._broken[0]
        if self._broken:
            raise InvalidFields(self._broken)


class TryAgain(DomainError):
    """Busy with a moment's clash, not the caller's fault: the same request later works."""

    status = 503
    slug = "service-unavailable"
    title = "Try again"

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Throttled(DomainError):
    status = 429
    slug = "too-many-requests"
    title = "Too many attempts"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
