"""Argon2id password hashing (argon2-cffi), run in the default executor."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP's floor for argon2id: 19 MiB, two passes, one lane.
MIN_MEMORY_KIB = 19 * 1024
MIN_TIME_COST = 2


class Argon2PasswordHasher:
    def __init__(self, time_cost: int, memory_cost_kib: int, parallelism: int) -> None:
        if memory_cost_kib < MIN_MEMORY_KIB or time_cost < MIN_TIME_COST or parallelism < 1:
            raise ValueError("argon2id parameters are below the OWASP minimum "
                             f"(m={MIN_MEMORY_KIB} KiB, t={MIN_TIME_COST}, p=1)")
        self._hasher = _Argon2(time_cost=time_cost, memory_cost=memory_cost_kib,
                               parallelism=parallelism, type=Type.ID)
        # Checked against when an account does not exist; its password is never used.
        self._decoy = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(None, self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        matches = await asyncio.get_running_loop().run_in_executor(
            None, self._check, password_hash or self._decoy, password)
        return matches and password_hash is not None

    def _check(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True
