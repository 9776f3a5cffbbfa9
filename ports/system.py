from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""


class IdGenerator(Protocol):
    def new_id(self) -> str:
        """A new unique id whose string order follows creation order."""


class Observed(Protocol):
    def stats(self) -> dict[str, float]:
        """Figures an operator watches (counts since start, or levels now), by name; the
        web layer turns them into metrics."""
