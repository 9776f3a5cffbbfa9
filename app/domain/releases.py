"""Releases of a product, their files, and who may download them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from app.domain.licensing import Certificate, License

VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$"
# Files in one zip at the most: each is checked, and listed in its central directory.
MAX_ARCHIVE_FILES = 100


class ReleaseKind(StrEnum):
    RELEASE = "release"
    UPDATE = "update"
    FIX = "fix"
    SECURITY = "security"


class ArtifactKind(StrEnum):
    IMAGE = "image"
    UPDATE = "update"
    DOC = "doc"


_IMAGE = re.compile(r"\.(iso|img|qcow2|ova|ovf|vmdk|vhdx?|raw)(\.(gz|xz|zst))?$", re.I)
_DOC = re.compile(r"\.(pdf|md|txt|html?|epub|docx?)$", re.I)


def artifact_kind_for(name: str) -> ArtifactKind:
    """Without release.yaml, a file's kind follows its extension."""
    if _IMAGE.search(name):
        return ArtifactKind.IMAGE
    if _DOC.search(name):
        return ArtifactKind.DOC
    return ArtifactKind.UPDATE


@dataclass
class Artifact:
    id: str
    release_id: str
    key: str
    name: str
    kind: ArtifactKind
    size: int
    etag: str
    sha256: str | None
    # Recorded when the release is registered, so a zip of these files has a known layout
    # (length, ranges) before its first byte is sent.
    crc32: int | None


@dataclass
class Release:
    id: str
    product_id: str
    version: str
    kind: ReleaseKind
    title: str
    notes: str
    published_at: datetime
    created_at: datetime
    yanked_at: datetime | None = None
    advisories: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)


@dataclass(frozen=True)
class Entitlement:
    available: bool
    reason: str | None = None


def _valid_on(document: License | Certificate, day: date) -> bool:
    return (document.revoked_at is None and document.valid_from <= day
            and (document.valid_to is None or day <= document.valid_to))


def entitlement(release: Release, licenses: list[License], certificates: list[Certificate],
                today: date) -> Entitlement:
    """May a cabinet holding these licenses and support certificates (of the release's
    product) download the release's files?

    A license must have been valid on the day the release was published, or be valid now.
    Updates and fixes published after the last support certificate ended stay locked;
    security fixes never are, for a licensed cabinet; a withdrawn release is locked for all.
    """
    if release.yanked_at is not None:
        return Entitlement(False, "This release was withdrawn.")
    published = release.published_at.date()
    if not any(_valid_on(held, published) or _valid_on(held, today) for held in licenses):
        return Entitlement(False, "No license of yours for this product was valid when it was "
                                  "published, or is valid now.")
    if release.kind not in (ReleaseKind.UPDATE, ReleaseKind.FIX):
        return Entitlement(True)
    support_ends = [c.valid_to for c in certificates
                    if c.revoked_at is None and c.valid_to is not None]
    if not support_ends:
        return Entitlement(False, "Updates and fixes need a support certificate.")
    last = max(support_ends)
    if published > last:
        return Entitlement(False, f"Published after your support ended on {last.isoformat()}.")
    return Entitlement(True)
