"""Mail into a folder, for the embedded default: one RFC 5322 `.eml` file per message under
`data_dir/mail/`, written whole (temporary name, then rename), so a reader never sees half
of one. A message sent twice (same Message-ID) is one file."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path

from adapters.mime import build_message
from ports.mail import Email, TemporaryMailError


class MaildirMailer:
    def __init__(self, folder: Path) -> None:
        self._folder = folder

    @property
    def longest_send(self) -> float:
        return 30.0  # a file written: a slow disk at worst

    def path_of(self, message_id: str) -> Path:
        return self._folder / (hashlib.sha256(message_id.encode()).hexdigest()[:32] + ".eml")

    async def probe(self) -> str:
        def writable() -> bool:
            self._folder.mkdir(parents=True, exist_ok=True)
            return os.access(self._folder, os.W_OK)
        try:
            if await asyncio.to_thread(writable):
                return f"writes .eml files into {self._folder}"
        except OSError as exc:
            raise TemporaryMailError(f"cannot use {self._folder}: {exc.strerror}") from exc
        raise TemporaryMailError(f"cannot write to {self._folder}")

    async def send(self, email: Email) -> None:
        try:
            await asyncio.to_thread(self._write, email)
        except OSError as exc:
            raise TemporaryMailError(f"cannot write to {self._folder}: {exc.strerror}") from exc

    def _write(self, email: Email) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        data = build_message(email).as_bytes()
        fd, temporary = tempfile.mkstemp(dir=self._folder, prefix=".writing-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, self.path_of(email.message_id))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
