"""Zip archives laid out before their first byte.

Each file's size and CRC-32 are recorded when its release is registered, so a stored
(uncompressed) zip of them is fully known in advance: headers around the files' raw bytes.
That gives a Content-Length up front, byte ranges on the archive itself (resumable
downloads of many-GB bundles), and member bytes copied from the store as they come, in
constant memory, with no temporary file. ZIP64 records are written where sizes or offsets
need them.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from ports.objects import ObjectStore

_LIMIT32 = 0xFFFFFFFF
_LIMIT16 = 0xFFFF
_UTF8 = 0x0800
_MADE_BY_UNIX = (3 << 8) | 45
_FILE_MODE = (0o100644 << 16)


@dataclass(frozen=True)
class Member:
    name: str
    size: int
    crc32: int
    modified: datetime
    # Where the bytes are: an object in the store, or the bytes themselves.
    bucket: str | None = None
    key: str | None = None
    data: bytes | None = None

    @classmethod
    def of_bytes(cls, name: str, data: bytes, modified: datetime) -> Member:
        return cls(name, len(data), zlib.crc32(data), modified, data=data)


@dataclass(frozen=True)
class Span:
    """The bytes [start, end) of an object in the store."""

    bucket: str
    key: str
    start: int
    end: int


Piece = bytes | Span


async def read_pieces(objects: ObjectStore,
                      pieces: Iterable[Piece]) -> AsyncGenerator[bytes, None]:
    """The pieces' bytes in order, objects read from the store as they are consumed."""
    for piece in pieces:
        if isinstance(piece, bytes):
            yield piece
        else:
            async for chunk in objects.get(piece.bucket, piece.key, start=piece.start,
                                           end=piece.end):
                yield chunk


@dataclass(frozen=True)
class _Segment:
    start: int
    length: int
    data: bytes | None = None
    member: Member | None = None


def _dos_time(moment: datetime) -> tuple[int, int]:
    year = min(max(moment.year, 1980), 2107)
    date = ((year - 1980) << 9) | (moment.month << 5) | moment.day
    time = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    return time, date


class ZipLayout:
    def __init__(self, members: list[Member]) -> None:
        self._segments: list[_Segment] = []
        self.size = 0
        central: list[bytes] = []
        offset = 0
        for member in members:
            name = member.name.encode()
            time, date = _dos_time(member.modified)
            big = member.size >= _LIMIT32
            extra = struct.pack("<HHQQ", 1, 16, member.size, member.size) if big else b""
            size32 = _LIMIT32 if big else member.size
            header = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if big else 20, _UTF8, 0,
                                 time, date, member.crc32, size32, size32, len(name),
                                 len(extra)) + name + extra
            self._add(header)
            self._add_member(member)
            wide = [value for value, needed in ((member.size, big), (member.size, big),
                                                (offset, offset >= _LIMIT32)) if needed]
            central_extra = struct.pack(f"<HH{len(wide)}Q", 1, 8 * len(wide), *wide) \
                if wide else b""
            central.append(struct.pack(
                "<IHHHHHHIIIHHHHHII", 0x02014B50, _MADE_BY_UNIX, 45 if wide else 20, _UTF8,
                0, time, date, member.crc32, size32, size32, len(name), len(central_extra),
                0, 0, 0, _FILE_MODE, _LIMIT32 if offset >= _LIMIT32 else offset)
                + name + central_extra)
            offset += len(header) + member.size
        directory = b"".join(central)
        self._add(directory)
        count, size, start = len(members), len(directory), offset
        tail = b""
        if count >= _LIMIT16 or size >= _LIMIT32 or start >= _LIMIT32:
            end64 = offset + size
            tail += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count,
                                size, start)
            tail += struct.pack("<IIQI", 0x07064B50, 0, end64, 1)
        tail += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(count, _LIMIT16),
                            min(count, _LIMIT16), min(size, _LIMIT32), min(start, _LIMIT32), 0)
        self._add(tail)

    def _add(self, data: bytes) -> None:
        self._segments.append(_Segment(self.size, len(data), data=data))
        self.size += len(data)

    def _add_member(self, member: Member) -> None:
        self._segments.append(_Segment(self.size, member.size, member=member))
        self.size += member.size

    def pieces(self, start: int = 0, end: int | None = None) -> Iterator[Piece]:
        """The archive's bytes [start, end): headers as bytes, member contents as spans of
        their objects, so a sender can copy those straight from the store."""
        end = self.size if end is None else min(end, self.size)
        for segment in self._segments:
            first, last = max(start, segment.start), min(end, segment.start + segment.length)
            if first >= last:
                continue
            a, b = first - segment.start, last - segment.start
            if segment.data is not None:
                yield segment.data[a:b]
            elif segment.member is not None and segment.member.data is not None:
                yield segment.member.data[a:b]
            elif segment.member is not None:
                assert segment.member.bucket and segment.member.key
                yield Span(segment.member.bucket, segment.member.key, a, b)

    def stream(self, objects: ObjectStore, start: int = 0,
               end: int | None = None) -> AsyncIterator[bytes]:
        """The archive's bytes [start, end), reading member bytes from the store as they are
        sent; a consumer that stops early stops the reads."""
        return read_pieces(objects, self.pieces(start, end))
