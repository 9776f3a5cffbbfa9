"""A file sent as multipart/form-data in the field `file`, read as it arrives: its bytes
never wait in memory, so it may be far larger than web.max_body_bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from app.domain.errors import BadRequest, SlowRequest
from app.web.keys import SETTINGS

CHUNK = 256 * 1024
FIELD = "file"


async def file_part(request: web.Request, *,
                    first: tuple[str, Callable[[str | None], None]] | None = None
                    ) -> BodyPartReader:
    """The part holding the file. With `first` (a field's name and a check), the form must
    begin with that field, and its value passes the check before anything else is read
    (a page form's CSRF token)."""
    refused = BadRequest(f"Send the file as multipart/form-data in the field `{FIELD}`.",
                         field=FIELD)
    if not request.content_type.startswith("multipart/form-data"):
        raise refused
    try:
        reader = await request.multipart()
        if first is not None:
            part = await reader.next()
            name, check = first
            check(await part.text() if isinstance(part, BodyPartReader) and part.name == name
                  else None)
        while (part := await reader.next()) is not None:
            if isinstance(part, BodyPartReader) and part.name == FIELD and part.filename:
                return part
    except (ValueError, AssertionError, HttpProcessingError):
        pass  # no boundary, a broken part header, a control character in a name
    raise refused


async def chunks(request: web.Request, part: BodyPartReader) -> AsyncIterator[bytes]:
    """The file's bytes; SlowRequest (408) when none arrive for server.body_timeout_seconds."""
    idle = request.app[SETTINGS].server.body_timeout_seconds
    while True:
        try:
            async with asyncio.timeout(idle):
                chunk = await part.read_chunk(CHUNK)
        except TimeoutError:
            raise SlowRequest("The file stopped arriving before it was whole.") from None
        if not chunk:
            return
        yield chunk
