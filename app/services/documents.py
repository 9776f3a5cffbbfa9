"""Printable licenses and certificates: PDFs from per-product templates, cached by what
they show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from app.domain.errors import Invalid
from app.domain.licensing import Certificate, DocumentKind, DocumentStatus, License
from app.domain.users import Principal
from app.services.licensing import DocumentView, LicensingService
from ports.documents import BlobCache, DocumentRenderer
from ports.security import LicenseSigner
from ports.system import Clock


@dataclass(frozen=True)
class PrintPolicy:
    brand: str
    base_url: str


@dataclass(frozen=True)
class RenderedDocument:
    etag: str
    filename: str
    # None when the caller already holds this version (its ETag matched).
    content: bytes | None
    view: DocumentView  # what was read for it (the download history names it)


@dataclass(frozen=True)
class LicenseFile:
    filename: str
    token: str  # a compact JWS
    view: DocumentView


def _day(value: date | None) -> str:
    return value.strftime("%d %B %Y").lstrip("0") if value else "Perpetual"


class DocumentService:
    def __init__(self, licensing: LicensingService, renderer: DocumentRenderer,
                 cache: BlobCache, signer: LicenseSigner, clock: Clock,
                 policy: PrintPolicy) -> None:
        self._licensing = licensing
        self._renderer = renderer
        self._cache = cache
        self._signer = signer
        self._clock = clock
        self._policy = policy

    def verify_url(self, number: str) -> str:
        return f"{self._policy.base_url.rstrip('/')}/verify/{number}"

    async def pdf(self, actor: Principal, kind: DocumentKind, document_id: str,
                  known_etag: str | None = None) -> RenderedDocument:
        """The document as PDF; rendered once per version and then served from the cache."""
        view = await self._licensing.get(actor, kind, document_id)
        templates = [f"pdf/{view.product.code}/{kind.value}.html",
                     f"pdf/default/{kind.value}.html"]
        context = self._context(view)
        etag = self._renderer.fingerprint(templates, context)
        filename = f"{view.document.number}.pdf"
        if known_etag == etag:
            return RenderedDocument(etag, filename, None, view)
        content = await self._cache.get(etag)
        if content is None:
            content = await self._renderer.render_pdf(templates, context)
            await self._cache.put(etag, content)
        return RenderedDocument(etag, filename, content, view)

    async def license_file(self, actor: Principal, license_id: str) -> LicenseFile:
        """A signed license file (compact JWS) for the boxed software, and its file name."""
        view = await self._licensing.get(actor, DocumentKind.LICENSE, license_id)
        document = view.document
        assert isinstance(document, License)
        if document.revoked_at is not None:
            raise Invalid("A revoked license has no license file.", field="format")
        if view.status is DocumentStatus.EXPIRED:
            raise Invalid(f"This license expired on {document.valid_to}: renew it for a license "
                          "file that the software accepts.", field="format")
        now = self._clock.now()
        claims = {
            "iss": self._policy.base_url, "number": document.number,
            "product": view.product.code, "product_name": view.product.name,
            "edition": document.edition, "seats": document.seats,
            "valid_from": document.valid_from.isoformat(),
            "valid_to": document.valid_to.isoformat() if document.valid_to else None,
            "owner": {"id": view.cabinet.id, "name": view.cabinet.name,
                      "external_id": view.cabinet.external_id},
            "issued_at": now.isoformat(timespec="seconds"), "iat": int(now.timestamp()),
        }
        return LicenseFile(f"{document.number}.lic", self._signer.sign(claims), view)

    def license_keys(self) -> dict[str, Any]:
        return self._signer.public_jwks()

    def _context(self, view: DocumentView) -> dict[str, Any]:
        """Everything the document shows, and nothing that changes by itself (such as
        today's status): equal contexts render equal documents."""
        document = view.document
        return {
            "brand": self._policy.brand, "kind": document.kind.value,
            "kind_label": document.kind.label, "number": document.number,
            "product_name": view.product.name, "product_code": view.product.code,
            "owner_name": view.cabinet.name, "owner_external_id": view.cabinet.external_id,
            "edition": document.edition if isinstance(document, License) else None,
            "seats": document.seats if isinstance(document, License) else None,
            "level": document.level if isinstance(document, Certificate) else None,
            "license_number": view.license_number,
            "valid_from": _day(document.valid_from), "valid_to": _day(document.valid_to),
            "issued_on": _day(document.created_at.date()),
            "revoked": document.revoked_at is not None,
            "verify_url": self.verify_url(document.number),
            "parameters": view.product.parameters,
        }
