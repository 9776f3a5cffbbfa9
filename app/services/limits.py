"""Rate limits on what is public or costly (the verification page, the webhooks, reports,
zip archives): requests per client address or per user in a fixed window, counted in
storage, so every portal process shares one count."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from app.domain.errors import Throttled
from app.services.work import Transactions
from ports.system import Clock


@dataclass(frozen=True)
class LimitPolicy:
    window_seconds: int
    # Name -> requests allowed in a window; a name not here is not limited.
    limits: dict[str, int]


class RateLimits:
    def __init__(self, work: Transactions, clock: Clock, policy: LimitPolicy) -> None:
        self._work = work
        self._clock = clock
        self._policy = policy

    async def spend(self, name: str, who: str) -> None:
        """Count one request of `who` (an address or a user) against the limit `name`;
        Throttled (429, with when to come back) over it."""
        limit = self._policy.limits.get(name)
        if limit is None:
            return
        now = self._clock.now()
        window = timedelta(seconds=self._policy.window_seconds)
        async with self._work() as uow:
            count, started = await uow.login_throttle.hit(f"limit:{name}:{who}", now,
                                                          now - window)
            await uow.commit()
        if count > limit:
            wait = max(1, math.ceil((started + window - now).total_seconds()))
            raise Throttled(f"Too many requests of this kind ({limit} in "
                            f"{self._policy.window_seconds} s). Try again in {wait} s.",
                            retry_after=wait)
