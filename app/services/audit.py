from __future__ import annotations

from typing import Any

from app.domain.audit import AuditEntry
from app.domain.users import Principal
from ports.system import Clock, IdGenerator


class AuditTrail:
    """Builds audit entries; the caller adds them to its unit of work, so an entry is
    written exactly when the change it records is."""

    def __init__(self, clock: Clock, ids: IdGenerator) -> None:
        self._clock = clock
        self._ids = ids

    def entry(self, action: str, actor: Principal | None, object_type: str,
              object_id: str | None, cabinet_id: str | None, *, address: str | None = None,
              **details: Any) -> AuditEntry:
        return AuditEntry(
            id=self._ids.new_id(), at=self._clock.now(), action=action,
            actor_id=actor.user_id if actor else None,
            actor_email=actor.email if actor else None,
            object_type=object_type, object_id=object_id, cabinet_id=cabinet_id,
            address=address if address is not None else (actor.address if actor else None),
            details=details,
        )
