"""The real clock and a UUIDv7 id generator."""

from __future__ import annotations

import os
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class Uuid7Ids:
    """RFC 9562 UUIDv7: 48 bits of Unix milliseconds, then a counter and randomness, so ids
    sort by creation time and keyset paging by id walks lists in creation order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._counter = 0

    def new_id(self) -> str:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                # Same (or a stepped-back) millisecond: keep ids increasing within the process.
                ms = self._last_ms
                self._counter += 1
            else:
                self._counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
            if self._counter > 0xFFF:
                ms += 1
                self._counter = 0
            self._last_ms = ms
            counter = self._counter
        rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
        return str(uuid.UUID(int=value))


def load_secret(path: Path) -> bytes:
    """A random secret kept in `path`, created on first use; readable by its owner only."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
    return path.read_bytes().strip()
