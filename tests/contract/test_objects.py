"""The object store's contract, on the local folder and on a real S3-compatible server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.localfs import LocalObjectStore
from adapters.s3 import S3ObjectStore
from ports.objects import InvalidKey, ObjectNotFound, ObjectStore
from tests.s3 import CREDENTIALS

BUCKET = "releases"


@pytest.fixture(params=["localfs", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    if request.param == "localfs":
        yield LocalObjectStore(tmp_path / "objects")
        return
    adapter = S3ObjectStore(request.getfixturevalue("s3_endpoint"), "us-east-1",
                            **CREDENTIALS)
    await adapter.open()
    try:
        yield adapter
    finally:
        await adapter.close()


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read(store: ObjectStore, key: str, **span: int) -> bytes:
    return b"".join([chunk async for chunk in store.get(BUCKET, key, **span)])


def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:8]}/"


async def test_put_then_head_get_and_ranges(store: ObjectStore) -> None:
    key = prefix() + "1.0/image.iso"
    info = await store.put(BUCKET, key, chunks(b"hello ", b"world"))
    assert (info.key, info.size) == (key, 11)
    head = await store.head(BUCKET, key)
    assert head.size == 11 and head.etag == info.etag
    assert await read(store, key) == b"hello world"
    assert await read(store, key, start=6) == b"world"
    assert await read(store, key, start=2, end=5) == b"llo"
    assert await read(store, key, start=0, end=0) == b""


async def test_a_replaced_object_gets_a_new_etag(store: ObjectStore) -> None:
    key = prefix() + "notes.md"
    first = await store.put(BUCKET, key, chunks(b"one"))
    second = await store.put(BUCKET, key, chunks(b"two, longer"))
    assert second.etag != first.etag and await read(store, key) == b"two, longer"


async def test_large_objects_stream_in_chunks(store: ObjectStore) -> None:
    key = prefix() + "big.bin"
    block = bytes(range(256)) * 4096  # 1 MiB
    await store.put(BUCKET, key, chunks(*(block for _ in range(3))))
    pieces = [chunk async for chunk in store.get(BUCKET, key)]
    assert sum(map(len, pieces)) == 3 * len(block) and len(pieces) >= 2
    assert b"".join(pieces)[len(block) - 3: len(block) + 3] == block[-3:] + block[:3]


async def test_listing_is_by_prefix_in_key_order_and_pages(store: ObjectStore) -> None:
    base = prefix()
    keys = [f"{base}2.0/b.zip", f"{base}1.0/a.iso", f"{base}1.0/release.yaml", f"{base}2.0/a"]
    for key in keys:
        await store.put(BUCKET, key, chunks(b"x"))
    await store.put(BUCKET, f"other-{base}1.0/a", chunks(b"x"))
    listed = [info.key for info in await store.list_objects(BUCKET, base)]
    assert listed == sorted(keys)
    first = await store.list_objects(BUCKET, base, limit=2)
    rest = await store.list_objects(BUCKET, base, after=first[-1].key)
    assert [i.key for i in first + rest] == sorted(keys)
    assert [i.key for i in await store.list_objects(BUCKET, base + "1.0/")] == [
        f"{base}1.0/a.iso", f"{base}1.0/release.yaml"]
    assert await store.list_objects("no-such-bucket", base) == []


async def test_missing_objects_and_deletes(store: ObjectStore) -> None:
    key = prefix() + "gone.txt"
    with pytest.raises(ObjectNotFound):
        await store.head(BUCKET, key)
    with pytest.raises(ObjectNotFound):
        await read(store, key)
    await store.put(BUCKET, key, chunks(b"x"))
    await store.delete(BUCKET, key)
    await store.delete(BUCKET, key)  # twice is fine
    with pytest.raises(ObjectNotFound):
        await store.head(BUCKET, key)


async def test_keys_cannot_escape_their_bucket(store: ObjectStore) -> None:
    for key in ("../secrets", "a/../../b", "/etc/passwd", "", "a\x00b"):
        with pytest.raises(InvalidKey):
            await store.head(BUCKET, key)


async def test_presigned_urls_where_the_store_has_them(store: ObjectStore) -> None:
    import aiohttp

    key = prefix() + "dl.bin"
    await store.put(BUCKET, key, chunks(b"payload"))
    url = await store.presigned_url(BUCKET, key, 60, filename="dl.bin")
    if isinstance(store, LocalObjectStore):
        assert url is None  # the portal streams local files itself
        return
    assert url is not None and "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url
    async with aiohttp.ClientSession() as http, http.get(url) as answer:
        assert answer.status == 200 and await answer.read() == b"payload"
        assert 'filename="dl.bin"' in answer.headers["Content-Disposition"]


async def test_the_local_store_keeps_objects_as_files(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    await store.put("releases", "dbguard/1.0/a.iso", chunks(b"abc"))
    assert (tmp_path / "releases" / "dbguard" / "1.0" / "a.iso").read_bytes() == b"abc"
    assert not list((tmp_path / "releases" / "dbguard" / "1.0").glob(".upload-*"))


async def test_listing_prefixes_cannot_leave_the_bucket(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    await store.put("secrets", "key.txt", chunks(b"x"))
    with pytest.raises(InvalidKey):
        await store.list_objects("releases", "../secrets/")


async def test_a_local_path_is_offered_only_by_a_store_on_this_machine(
        store: ObjectStore) -> None:
    key = prefix() + "local.bin"
    await store.put(BUCKET, key, chunks(b"on disk"))
    path = store.local_path(BUCKET, key)
    if isinstance(store, LocalObjectStore):
        assert path is not None and path.read_bytes() == b"on disk"
        with pytest.raises(InvalidKey):
            store.local_path(BUCKET, "../outside")
    else:
        assert path is None  # remote: sent by a presigned URL or streamed


async def test_a_file_opened_for_a_cancelled_reader_is_closed(tmp_path: Path) -> None:
    import asyncio
    import gc
    import warnings

    from ports.objects import open_for_reading

    path = tmp_path / "f.bin"
    path.write_bytes(b"x")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        for _ in range(50):
            task = asyncio.ensure_future(open_for_reading(path))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        await asyncio.sleep(0.2)  # the threads finish opening
        gc.collect()  # an unclosed file would warn here, and the warning is an error
