"""The production object store: any S3-compatible server through aioboto3.

One client per process, opened and closed with the app. Presigned URLs are SigV4.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ports.objects import (
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    ObjectStoreUnavailable,
    attachment_header,
    check_key,
)

CHUNK = 1024 * 1024
# Parts are spooled to disk beyond this, so a large upload does not sit in memory.
_SPOOL_BYTES = 8 * 1024 * 1024
_MISSING = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}


def _translate(exc: Exception, what: str) -> Exception:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _MISSING:
            return ObjectNotFound(what)
        if code in ("InvalidBucketName", "KeyTooLongError", "InvalidArgument"):
            return InvalidKey(what)
    return ObjectStoreUnavailable(f"S3: {what}: {exc}")


class S3ObjectStore:
    def __init__(self, endpoint_url: str, region: str, access_key_id: str,
                 secret_access_key: str) -> None:
        self._endpoint = endpoint_url or None
        self._region = region or None
        # Empty: boto's own search (environment variables, profiles, instance roles).
        self._credentials = ({"aws_access_key_id": access_key_id,
                              "aws_secret_access_key": secret_access_key}
                             if access_key_id else {})
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def open(self) -> None:
        session = aioboto3.Session()
        self._client = await self._stack.enter_async_context(session.client(
            "s3", endpoint_url=self._endpoint, region_name=self._region,
            config=Config(signature_version="s3v4", retries={"max_attempts": 3}),
            **self._credentials))

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    async def list_objects(self, bucket: str, prefix: str, *, after: str | None = None,
                           limit: int = 1000) -> list[ObjectInfo]:
        check_key(bucket)
        found: list[ObjectInfo] = []
        token: str | None = None
        while len(found) < limit:
            request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix,
                                       "MaxKeys": min(1000, limit - len(found))}
            if token:
                request["ContinuationToken"] = token
            elif after:
                request["StartAfter"] = after
            try:
                page = await self._client.list_objects_v2(**request)
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                    return found
                raise _translate(exc, f"{bucket}/{prefix}") from exc
            except BotoCoreError as exc:
                raise _translate(exc, f"{bucket}/{prefix}") from exc
            found += [ObjectInfo(key=item["Key"], size=int(item["Size"]),
                                 etag=str(item["ETag"]).strip('"'),
                                 modified=item["LastModified"])
                      for item in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                break
        return found

    async def head(self, bucket: str, key: str) -> ObjectInfo:
        check_key(bucket, key)
        try:
            answer = await self._client.head_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, f"{bucket}/{key}") from exc
        return ObjectInfo(key=key, size=int(answer["ContentLength"]),
                          etag=str(answer["ETag"]).strip('"'), modified=answer["LastModified"])

    async def get(self, bucket: str, key: str, *, start: int = 0,
                  end: int | None = None) -> AsyncIterator[bytes]:
        check_key(bucket, key)
        if end is not None and end <= start:
            return
        request: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if start or end is not None:
            request["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            answer = await self._client.get_object(**request)
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, f"{bucket}/{key}") from exc
        body = answer["Body"]
        try:
            async for chunk in body.iter_chunks(CHUNK):
                yield chunk
        finally:
            body.close()

    async def put(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> ObjectInfo:
        check_key(bucket, key)
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
            async for chunk in chunks:
                spool.write(chunk)
            spool.seek(0)
            try:
                await self._client.upload_fileobj(spool, bucket, key)
            except (ClientError, BotoCoreError) as exc:
                raise _translate(exc, f"{bucket}/{key}") from exc
        return await self.head(bucket, key)

    async def delete(self, bucket: str, key: str) -> None:
        check_key(bucket, key)
        try:
            await self._client.delete_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, f"{bucket}/{key}") from exc

    def local_path(self, bucket: str, key: str) -> Path | None:
        return None

    async def presigned_url(self, bucket: str, key: str, ttl_seconds: int,
                            filename: str | None = None) -> str | None:
        check_key(bucket, key)
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = attachment_header(filename)
        return str(await self._client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=ttl_seconds))
