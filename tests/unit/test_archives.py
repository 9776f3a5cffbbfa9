"""Zip archives laid out in advance: valid zips, byte ranges, ZIP64, constant memory."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from app.services.archives import Member, ZipLayout

WHEN = datetime(2026, 11, 26, 12, 30, 4, tzinfo=UTC)
MIB = 1024 * 1024


class ZeroStore:
    """An object store whose every object is `size` zero bytes, made up on the fly."""

    async def get(self, bucket: str, key: str, *, start: int = 0,
                  end: int | None = None) -> AsyncIterator[bytes]:
        assert end is not None
        block = bytes(MIB)
        while start < end:
            n = min(MIB, end - start)
            yield block[:n]
            start += n


class BytesStore:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    async def get(self, bucket: str, key: str, *, start: int = 0,
                  end: int | None = None) -> AsyncIterator[bytes]:
        yield self.objects[key][start:end]


async def collect(layout: ZipLayout, store: object, start: int = 0,
                  end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in layout.stream(store, start, end)])  # type: ignore[arg-type]


def member(key: str, data: bytes) -> Member:
    return Member(f"dbguard-1.0/{key}", len(data), zlib.crc32(data), WHEN, bucket="b", key=key)


async def test_the_archive_opens_with_zipfile_and_has_the_announced_length() -> None:
    files = {"image.iso": b"\x01" * 100_000, "notes.md": "héllo ünïcode".encode(), "empty": b""}
    store = BytesStore(files)
    layout = ZipLayout([member(k, v) for k, v in files.items()]
                       + [Member.of_bytes("SHA256SUMS", b"abc  image.iso\n", WHEN)])
    archive = await collect(layout, store)
    assert len(archive) == layout.size
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        assert opened.testzip() is None
        assert opened.namelist() == [f"dbguard-1.0/{k}" for k in files] + ["SHA256SUMS"]
        assert opened.read("dbguard-1.0/notes.md") == files["notes.md"]
        assert opened.getinfo("dbguard-1.0/image.iso").date_time == (2026, 11, 26, 12, 30, 4)


async def test_any_byte_range_is_the_same_bytes_as_the_whole() -> None:
    files = {f"f{n}": bytes([n]) * (1000 * n + 7) for n in range(1, 6)}
    layout = ZipLayout([member(k, v) for k, v in files.items()])
    whole = await collect(layout, BytesStore(files))
    for start, end in [(0, 1), (0, 30), (25, 4100), (3000, layout.size), (layout.size - 22,
                                                                           layout.size)]:
        assert await collect(layout, BytesStore(files), start, end) == whole[start:end]


async def test_a_5_gb_archive_streams_in_constant_memory_and_uses_zip64(tmp_path: Path) -> None:
    sizes = [4 * 1024 * MIB + 512 * MIB, 1024 * MIB + 5]  # past 4 GiB: size and offset
    crc = {}
    for size in sizes:
        value, left, block = 0, size, bytes(MIB)
        while left:
            n = min(MIB, left)
            value = zlib.crc32(block[:n], value)
            left -= n
        crc[size] = value
    layout = ZipLayout([Member(f"big-{n}.img", size, crc[size], WHEN, bucket="b",
                               key=f"k{n}") for n, size in enumerate(sizes)])
    target = tmp_path / "big.zip"
    tracemalloc.start()
    written = 0
    with target.open("wb") as sink:
        async for chunk in layout.stream(ZeroStore()):  # type: ignore[arg-type]
            if chunk.count(0) == len(chunk):
                sink.seek(len(chunk), io.SEEK_CUR)  # a sparse file: no 5 GB on the disk
            else:
                sink.write(chunk)
            written += len(chunk)
        sink.truncate()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert written == layout.size > 5 * 1024 * MIB
    assert peak < 16 * MIB, f"peak {peak / MIB:.1f} MiB"
    with zipfile.ZipFile(target) as opened:
        infos = opened.infolist()
        assert [i.file_size for i in infos] == sizes
        assert infos[1].header_offset > 0xFFFFFFFF
        with opened.open(infos[1]) as data:  # reads through the ZIP64 offset
            assert data.read(MIB) == bytes(MIB)
