"""The embedded object store: a folder per bucket under data_dir/objects."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from ports.objects import InvalidKey, ObjectInfo, ObjectNotFound, check_key, open_for_reading

CHUNK = 256 * 1024


class LocalObjectStore:
    def __init__(self, root: Path) -> None:
        self._root = root

    async def open(self) -> None:
        await asyncio.to_thread(self._root.mkdir, parents=True, exist_ok=True)

    async def close(self) -> None:
        return None

    def path_of(self, bucket: str, key: str) -> Path:
        """The file of a key; InvalidKey for anything that would leave the bucket's folder."""
        check_key(bucket, key)
        folder = (self._root / bucket).resolve()
        path = (folder / key).resolve()
        if not path.is_relative_to(folder):
            raise InvalidKey(f"not an object key: {key!r}")
        return path

    def local_path(self, bucket: str, key: str) -> Path | None:
        return self.path_of(bucket, key)

    @staticmethod
    def _info(key: str, stat: os.stat_result) -> ObjectInfo:
        return ObjectInfo(key=key, size=stat.st_size, etag=f"{stat.st_size:x}-{stat.st_mtime_ns:x}",
                          modified=datetime.fromtimestamp(stat.st_mtime, UTC))

    async def list_objects(self, bucket: str, prefix: str, *, after: str | None = None,
                           limit: int = 1000) -> list[ObjectInfo]:
        return await asyncio.to_thread(self._list, bucket, prefix, after, limit)

    def _list(self, bucket: str, prefix: str, after: str | None, limit: int) -> list[ObjectInfo]:
        check_key(bucket)
        if "\\" in prefix or any(part in (".", "..") for part in prefix.split("/")):
            raise InvalidKey(f"not a key prefix: {prefix!r}")
        folder = self._root / bucket
        # Walk only below the prefix's folder part.
        start = folder / prefix.rsplit("/", 1)[0] if "/" in prefix else folder
        found: list[ObjectInfo] = []
        if not start.is_dir():
            return found
        for directory, _, files in os.walk(start):
            for name in files:
                path = Path(directory) / name
                key = path.relative_to(folder).as_posix()
                if key.startswith(prefix) and (after is None or key > after) \
                        and not name.startswith(".upload-"):
                    found.append(self._info(key, path.stat()))
        found.sort(key=lambda info: info.key)
        return found[:limit]

    async def head(self, bucket: str, key: str) -> ObjectInfo:
        path = self.path_of(bucket, key)
        try:
            stat = await asyncio.to_thread(path.stat)
        except FileNotFoundError:
            raise ObjectNotFound(f"{bucket}/{key}") from None
        if not path.is_file():
            raise ObjectNotFound(f"{bucket}/{key}")
        return self._info(key, stat)

    async def get(self, bucket: str, key: str, *, start: int = 0,
                  end: int | None = None) -> AsyncIterator[bytes]:
        path = self.path_of(bucket, key)
        try:
            handle = await open_for_reading(path)
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectNotFound(f"{bucket}/{key}") from None
        try:
            await asyncio.to_thread(handle.seek, start)
            left = None if end is None else max(0, end - start)
            while left is None or left > 0:
                chunk = await asyncio.to_thread(handle.read,
                                                CHUNK if left is None else min(CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            # Closing a file we only read returns at once; in a thread, a cancellation that came
            # before the thread started would skip it and leak the file.
            handle.close()

    async def put(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> ObjectInfo:
        path = self.path_of(bucket, key)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        fd, temporary = await asyncio.to_thread(
            tempfile.mkstemp, prefix=".upload-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                async for chunk in chunks:
                    await asyncio.to_thread(handle.write, chunk)
            await asyncio.to_thread(os.replace, temporary, path)
        except BaseException:
            await asyncio.to_thread(Path(temporary).unlink, missing_ok=True)
            raise
        return await self.head(bucket, key)

    async def delete(self, bucket: str, key: str) -> None:
        await asyncio.to_thread(self.path_of(bucket, key).unlink, missing_ok=True)

    async def presigned_url(self, bucket: str, key: str, ttl_seconds: int,
                            filename: str | None = None) -> str | None:
        return None  # the portal streams local files itself
