"""Bodies of a product's releases."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.domain.releases import (
    VERSION_PATTERN,
    ArtifactKind,
    Release,
    ReleaseKind,
)
from app.web.schemas.common import Body, Out


class Advisory(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(max_length=100)
    severity: str = Field(max_length=30)
    summary: str = Field(max_length=2000)


class ArtifactOut(Out):
    id: str
    name: str
    kind: ArtifactKind
    size: int
    sha256: str | None


class ReleaseOut(Out):
    id: str
    product_id: str
    version: str
    kind: ReleaseKind
    title: str
    notes: str = Field(description="Markdown.")
    advisories: list[Advisory]
    published_at: datetime
    yanked_at: datetime | None
    files: list[ArtifactOut]

    @classmethod
    def of(cls, release: Release) -> ReleaseOut:
        return cls(id=release.id, product_id=release.product_id, version=release.version,
                   kind=release.kind, title=release.title, notes=release.notes,
                   advisories=[Advisory(**a) for a in release.advisories],
                   published_at=release.published_at, yanked_at=release.yanked_at,
                   files=[ArtifactOut(id=a.id, name=a.name, kind=a.kind, size=a.size,
                                      sha256=a.sha256) for a in release.artifacts])


class ReleasePage(Out):
    items: list[ReleaseOut]
    next_cursor: str | None


class ReleaseCreate(Body):
    version: str = Field(pattern=VERSION_PATTERN,
                         description="Its files are those under <prefix><version>/.")
    kind: ReleaseKind | None = None
    title: str | None = Field(None, min_length=1, max_length=200)
    notes: str | None = Field(None, max_length=100_000, description="Markdown.")
    published_at: datetime | None = None
    advisories: list[Advisory] | None = Field(None, max_length=100)


class ReleasePatch(Body):
    yanked: bool = Field(description="Withdraw the release (true) or restore it.")
