"""What a license gives access to, the archive query and the download history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.domain.releases import (
    MAX_ARCHIVE_FILES,
    ArtifactKind,
    ReleaseKind,
)
from app.web.schemas.common import Out
from app.web.schemas.licensing import ProductRef


class FileAccess(Out):
    id: str
    name: str
    kind: ArtifactKind
    size: int
    sha256: str | None
    available: bool
    locked_reason: str | None
    download_url: str | None


class ReleaseAccess(Out):
    id: str
    version: str
    kind: ReleaseKind
    title: str
    published_at: datetime
    available: bool
    locked_reason: str | None
    files: list[FileAccess]


class LicenseImages(Out):
    license_id: str
    number: str
    product: ProductRef
    archive_url: str = Field(description="Add file=<id> (repeatable) or release=<id>.")
    releases: list[ReleaseAccess]


FileId = Annotated[str, Field(pattern=r"^[0-9A-Za-z-]{1,40}$")]


class ArchiveQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    # Bounded so that a full query stays under the 8 KiB request line aiohttp accepts.
    file: list[FileId] | None = Field(None, max_length=MAX_ARCHIVE_FILES,
                                      description="File ids; repeat it.")
    release: FileId | None = Field(None, description="Every file of a release.")


class DownloadOut(Out):
    id: str
    at: datetime
    by: str | None
    cabinet_id: str | None
    license: str
    product: str
    version: str
    file: str
    size: int
    archive: bool


class DownloadPage(Out):
    items: list[DownloadOut]
    next_cursor: str | None
