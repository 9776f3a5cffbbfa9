from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class AuditEntry:
    """Who did what to which object, and from where."""

    id: str
    at: datetime
    action: str
    actor_id: str | None
    actor_email: str | None
    object_type: str
    object_id: str | None
    cabinet_id: str | None
    address: str | None
    details: dict[str, Any] = field(default_factory=dict)
