from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class DomainEvent:
    """Something that happened, published once the change that caused it is committed.

    `cabinet_ids` are the organisations concerned (notifications go to their users).
    """

    name: str
    at: datetime
    cabinet_ids: tuple[str, ...]
    data: dict[str, Any] = field(default_factory=dict)
