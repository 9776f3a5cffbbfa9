"""Object store port: the buckets where product teams publish releases."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import quote


class ObjectStoreError(Exception):
    """Base of the errors an object store adapter raises."""


class ObjectNotFound(ObjectStoreError):
    """No such bucket or key."""


class InvalidKey(ObjectStoreError):
    """A key or bucket name that could escape its bucket or that the store cannot hold."""


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def check_key(bucket: str, key: str | None = None) -> None:
    """What every store accepts: S3's bucket names, and keys of non-empty path parts that
    are neither "." nor "..", with no backslash or NUL. InvalidKey otherwise."""
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise InvalidKey(f"not a bucket name: {bucket!r}")
    if key is None:
        return
    if (not key or len(key) > 1024 or "\\" in key or "\x00" in key
            or any(part in ("", ".", "..") for part in key.split("/"))):
        raise InvalidKey(f"not an object key: {key!r}")


class ObjectStoreUnavailable(ObjectStoreError):
    """The store cannot be reached or refused the request; nothing was changed."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    # Changes whenever the content does.
    etag: str
    modified: datetime


class ObjectStore(Protocol):
    async def list_objects(self, bucket: str, prefix: str, *, after: str | None = None,
                           limit: int = 1000) -> list[ObjectInfo]:
        """Objects whose keys start with `prefix`, in key order, after the key `after`; at
        most `limit`. An unknown bucket is empty."""

    async def head(self, bucket: str, key: str) -> ObjectInfo:
        """ObjectNotFound if absent."""

    def get(self, bucket: str, key: str, *, start: int = 0,
            end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes [start, end) (end None: to the end) as chunks, read as they are
        consumed: a consumer that stops early stops the reading. ObjectNotFound on the
        first iteration if absent."""

    async def put(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> ObjectInfo:
        """Store the chunks as the object, replacing any; readers never see half of it."""

    async def delete(self, bucket: str, key: str) -> None:
        """Remove the object; absent is fine."""

    def local_path(self, bucket: str, key: str) -> Path | None:
        """The file on this machine that holds the object, so that it can be sent with
        sendfile (no copy through Python); None when the store is not a local folder."""

    async def presigned_url(self, bucket: str, key: str, ttl_seconds: int,
                            filename: str | None = None) -> str | None:
        """A URL that downloads the object for `ttl_seconds` without credentials, or None
        when this store cannot make one (the caller then streams the object itself)."""


async def open_for_reading(path: Path) -> BinaryIO:
    """A local file opened in a worker thread. If the caller is cancelled meanwhile, the
    file is closed by whichever side comes second, the thread or the caller, so it is
    never left to the garbage collector (not even when the loop closes before the thread
    is done)."""
    lock = threading.Lock()
    opened: list[BinaryIO] = []
    abandoned = False

    def open_it() -> BinaryIO:
        handle: BinaryIO = path.open("rb")
        with lock:
            if abandoned:
                handle.close()
            else:
                opened.append(handle)
        return handle

    try:
        return await asyncio.to_thread(open_it)
    except asyncio.CancelledError:
        with lock:
            abandoned = True
            for handle in opened:
                handle.close()
        raise


def attachment_header(filename: str) -> str:
    """Content-Disposition of a download (RFC 6266): a plain ASCII name for old clients and
    the exact name, percent-encoded, for the rest; quotes and control characters can never
    break out of it."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
