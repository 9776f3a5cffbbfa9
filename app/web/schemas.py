"""The API's request and response bodies; the OpenAPI document is generated from them."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from app.domain.cabinets import MAX_NAME_LENGTH, Cabinet, CabinetKind
from app.domain.licensing import Certificate, DocumentKind, DocumentStatus, License
from app.domain.notifications import Notification, NotificationKind, Preference
from app.domain.paging import DEFAULT_LIMIT, MAX_LIMIT
from app.domain.products import (
    BUCKET_PATTERN,
    CODE_PATTERN,
    MAX_DESCRIPTION_LENGTH,
    MAX_PREFIX_LENGTH,
    Product,
)
from app.domain.purchases import (
    PurchaseAction,
    PurchaseCustomer,
    PurchaseEvent,
    PurchaseItem,
    PurchaseType,
)
from app.domain.releases import (
    MAX_ARCHIVE_FILES,
    VERSION_PATTERN,
    ArtifactKind,
    Release,
    ReleaseKind,
)
from app.domain.roles import Role
from app.domain.users import EMAIL_PATTERN, MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH, User
from app.services.licensing import DocumentView

Name = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"\S")
ExternalId = Field(min_length=1, max_length=100)


class Body(BaseModel):
    """A request body: strict JSON types, and unknown fields refused (no mass assignment)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


# ---- queries


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page.")
    cursor: str | None = Field(None, max_length=200,
                               description="`next_cursor` of the previous page.")


# ---- auth


class LoginIn(Body):
    email: str = Field(min_length=1, max_length=MAX_EMAIL_LENGTH)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class RefreshIn(Body):
    refresh_token: str = Field(min_length=1, max_length=4096)


class RevokeIn(Body):
    refresh_token: str | None = Field(
        None, min_length=1, max_length=4096,
        description="The login to end; without it, the login of the bearer token.")


class TokenOut(Out):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds the access token lives.")


class PasswordSetIn(Body):
    token: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


# ---- cabinets


class CabinetOut(Out):
    id: str
    name: str
    kind: CabinetKind
    parent_id: str | None
    external_id: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, cabinet: Cabinet) -> CabinetOut:
        return cls(id=cabinet.id, name=cabinet.name, kind=cabinet.kind,
                   parent_id=cabinet.parent_id, external_id=cabinet.external_id,
                   created_at=cabinet.created_at, updated_at=cabinet.updated_at)


class CabinetPage(Out):
    items: list[CabinetOut]
    next_cursor: str | None


class CabinetCreate(Body):
    name: str = Name
    kind: CabinetKind = CabinetKind.CUSTOMER
    parent_id: str | None = Field(None, description="Omit (staff admins) for a top-level cabinet.")
    external_id: str | None = Field(None, min_length=1, max_length=100,
                                    description="Billing id; staff admins only.")


def reject_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may be left out but not null")
    return value


class CabinetPatch(Body):
    """Fields left out stay unchanged; null clears `external_id` or moves to the top."""

    name: str | SkipJsonSchema[None] = Field(None, min_length=1, max_length=MAX_NAME_LENGTH,
                                             pattern=r"\S")
    external_id: str | None = Field(None, min_length=1, max_length=100,
                                    description="Staff admins only.")
    parent_id: str | None = Field(None, description="Move the cabinet; staff admins only.")

    check_name = field_validator("name", mode="before")(reject_null)


# ---- users


class UserOut(Out):
    id: str
    email: str
    name: str
    role: Role
    cabinet_id: str
    active: bool
    has_password: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, email=user.email, name=user.name, role=user.role,
                   cabinet_id=user.cabinet_id, active=user.active,
                   has_password=user.password_hash is not None,
                   created_at=user.created_at, updated_at=user.updated_at)


class UserPage(Out):
    items: list[UserOut]
    next_cursor: str | None


class UserCreate(Body):
    email: str = Field(max_length=MAX_EMAIL_LENGTH, pattern=EMAIL_PATTERN)
    name: str = Field("", max_length=MAX_NAME_LENGTH)
    role: Role = Role.CUSTOMER_USER


class UserCreated(Out):
    user: UserOut
    set_password_url: str = Field(description="One-time link for the user to set a password.")
    set_password_expires_at: datetime


class UserPatch(Body):
    """Fields left out stay unchanged."""

    name: str | SkipJsonSchema[None] = Field(None, min_length=1, max_length=MAX_NAME_LENGTH,
                                             pattern=r"\S")
    role: Role | SkipJsonSchema[None] = None
    active: bool | SkipJsonSchema[None] = None

    check_fields = field_validator("name", "role", "active", mode="before")(reject_null)


# ---- products


class ProductOut(Out):
    id: str
    code: str
    name: str
    description: str
    parameters: dict[str, Any]
    bucket: str
    prefix: str
    active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, product: Product) -> ProductOut:
        return cls(**vars(product))


class ProductPage(Out):
    items: list[ProductOut]
    next_cursor: str | None


PARAMETERS = "Free JSON: editions, platforms, anything to show or template on."


class ProductCreate(Body):
    code: str = Field(pattern=CODE_PATTERN, description="Unique slug; cannot change later.")
    name: str = Name
    description: str = Field("", max_length=MAX_DESCRIPTION_LENGTH)
    parameters: dict[str, Any] = Field(default_factory=dict, description=PARAMETERS)
    bucket: str = Field(pattern=BUCKET_PATTERN, description="Bucket of the releases.")
    prefix: str | None = Field(None, max_length=MAX_PREFIX_LENGTH,
                               description="Key prefix of the releases; default `<code>/`.")
    active: bool = True


class ProductPatch(Body):
    """Fields left out stay unchanged."""

    name: str | SkipJsonSchema[None] = Field(None, min_length=1, max_length=MAX_NAME_LENGTH,
                                             pattern=r"\S")
    description: str | SkipJsonSchema[None] = Field(None, max_length=MAX_DESCRIPTION_LENGTH)
    parameters: dict[str, Any] | SkipJsonSchema[None] = None
    bucket: str | SkipJsonSchema[None] = Field(None, pattern=BUCKET_PATTERN)
    prefix: str | SkipJsonSchema[None] = Field(None, max_length=MAX_PREFIX_LENGTH)
    active: bool | SkipJsonSchema[None] = None

    check_fields = field_validator("name", "description", "parameters", "bucket", "prefix",
                                   "active", mode="before")(reject_null)


# ---- licenses and certificates



class ProductRef(Out):
    id: str
    code: str
    name: str


class OwnerRef(Out):
    id: str
    name: str


class TransferOut(Out):
    from_cabinet_id: str
    to_cabinet_id: str
    at: datetime
    by: str | None = Field(description="E-mail of whoever moved it.")


class DocumentOut(Out):
    id: str
    number: str
    product: ProductRef
    cabinet: OwnerRef
    valid_from: date
    valid_to: date | None = Field(description="Last valid day; null: perpetual.")
    status: DocumentStatus
    days_left: int | None = Field(description="Days until valid_to; null when perpetual.")
    revoked_at: datetime | None
    purchase_item: str | None = Field(description="The billing system's purchase item id.")
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def common(view: DocumentView) -> dict[str, Any]:
        document = view.document
        return {
            "id": document.id, "number": document.number,
            "product": ProductRef(id=view.product.id, code=view.product.code,
                                  name=view.product.name),
            "cabinet": OwnerRef(id=view.cabinet.id, name=view.cabinet.name),
            "valid_from": document.valid_from, "valid_to": document.valid_to,
            "status": view.status, "days_left": view.days_left,
            "revoked_at": document.revoked_at, "purchase_item": document.purchase_item,
            "created_at": document.created_at, "updated_at": document.updated_at,
        }


class LicenseOut(DocumentOut):
    edition: str
    seats: int

    @classmethod
    def of(cls, view: DocumentView) -> LicenseOut:
        assert isinstance(view.document, License)
        return cls(**cls.common(view), edition=view.document.edition, seats=view.document.seats)


class CertificateOut(DocumentOut):
    level: str
    license_id: str | None

    @classmethod
    def of(cls, view: DocumentView) -> CertificateOut:
        assert isinstance(view.document, Certificate)
        return cls(**cls.common(view), level=view.document.level,
                   license_id=view.document.license_id)


def _transfers(view: DocumentView) -> list[TransferOut]:
    return [TransferOut(from_cabinet_id=t.from_cabinet_id, to_cabinet_id=t.to_cabinet_id,
                        at=t.at, by=t.actor_email) for t in view.transfers]


class LicenseDetail(LicenseOut):
    transfers: list[TransferOut] = Field(description="Moves between cabinets, oldest first.")

    @classmethod
    def of(cls, view: DocumentView) -> LicenseDetail:
        return cls(**LicenseOut.of(view).__dict__, transfers=_transfers(view))


class CertificateDetail(CertificateOut):
    transfers: list[TransferOut] = Field(description="Moves between cabinets, oldest first.")

    @classmethod
    def of(cls, view: DocumentView) -> CertificateDetail:
        return cls(**CertificateOut.of(view).__dict__, transfers=_transfers(view))


class LicensePage(Out):
    items: list[LicenseOut]
    next_cursor: str | None


class CertificatePage(Out):
    items: list[CertificateOut]
    next_cursor: str | None


def iso_day(value: Any) -> Any:
    """Days are YYYY-MM-DD; pydantic alone would also read "0" as 1 January 1970."""
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be a day as YYYY-MM-DD")
    return value


class DocumentListQuery(ListQuery):
    product: str | None = Field(None, max_length=100, description="A product id or code.")
    status: DocumentStatus | None = None
    cabinet_id: str | None = Field(
        None, max_length=100, description="This cabinet and those below it (must be visible).")
    expires_before: date | None = Field(None, description="valid_to before this day.")
    format: Literal["json"] | None = Field(None, description="Only json for now.")

    check_day = field_validator("expires_before", mode="before")(iso_day)


class CertificateFormatQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    format: Literal["json", "pdf"] | None = Field(
        None, description="json (default) or pdf; without it, `Accept: application/pdf` "
                          "also asks for the PDF.")


class LicenseFormatQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    format: Literal["json", "pdf", "lic"] | None = Field(
        None, description="json (default), pdf, or lic: the signed license file (compact "
                          "JWS) for the software to check offline against "
                          "/.well-known/license-keys.json.")


class TransferIn(Body):
    cabinet_id: str = Field(min_length=1, max_length=100,
                            description="A cabinet below the current owner.")


# ---- the purchases feed

class PurchaseCustomerIn(Body):
    external_id: str = Field(min_length=1, max_length=100, description="Customer's billing id.")
    name: str = Name
    parent_external_id: str | None = Field(None, min_length=1, max_length=100)
    contact_email: str | None = Field(None, max_length=MAX_EMAIL_LENGTH)


class PurchaseItemIn(Body):
    external_id: str = Field(min_length=1, max_length=100, description="Item's billing id.")
    kind: DocumentKind
    product_code: str | None = Field(None, max_length=63, description="New items only.")
    edition: str | None = Field(None, min_length=1, max_length=100, description="Licenses.")
    seats: int | None = Field(None, ge=1, le=1_000_000, description="Licenses.")
    level: str | None = Field(None, min_length=1, max_length=50, description="Certificates.")
    valid_from: date | None = None
    valid_to: date | None = Field(None, description="Null: a perpetual license.")
    license_external_id: str | None = Field(
        None, min_length=1, max_length=100,
        description="The license (its item id) a support certificate is for.")


class PurchaseEventIn(Body):
    event_id: str = Field(min_length=1, max_length=200)
    type: PurchaseType
    occurred_at: datetime
    customer: PurchaseCustomerIn
    items: list[PurchaseItemIn] = Field(min_length=1, max_length=500)

    def to_domain(self) -> PurchaseEvent:
        return PurchaseEvent(
            event_id=self.event_id, type=self.type, occurred_at=self.occurred_at,
            customer=PurchaseCustomer(**self.customer.model_dump()),
            items=tuple(PurchaseItem(**item.model_dump()) for item in self.items))


class PurchaseCabinetOut(Out):
    id: str
    name: str
    external_id: str | None
    created: bool = Field(description="The event created this customer's cabinet.")


class PurchaseDocumentOut(Out):
    id: str
    number: str
    purchase_item: str
    action: PurchaseAction


class PurchaseOutcomeOut(Out):
    event_id: str
    type: str
    cabinet: PurchaseCabinetOut
    licenses: list[PurchaseDocumentOut]
    certificates: list[PurchaseDocumentOut]


# ---- releases and downloads



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


# ---- me


class CabinetRef(Out):
    id: str
    name: str
    kind: CabinetKind

    @classmethod
    def of(cls, cabinet: Cabinet) -> CabinetRef:
        return cls(id=cabinet.id, name=cabinet.name, kind=cabinet.kind)


class MyCabinet(CabinetOut):
    ancestors: list[CabinetRef] = Field(description="From the top of the tree down.")
    children: list[CabinetRef]


class MeOut(Out):
    user: UserOut
    cabinet: MyCabinet
    role: Role
    permissions: list[str]


# ---- system


class Health(Out):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


class Jwk(Out):
    model_config = ConfigDict(extra="allow", frozen=True)
    kty: str
    kid: str
    use: str
    alg: str


class Jwks(Out):
    keys: list[Jwk]


class FieldError(Out):
    field: str
    message: str


class Problem(Out):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str
    errors: list[FieldError] | None = None


class OpenApiDocument(Out):
    model_config = ConfigDict(extra="allow", frozen=True)
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]


# ---- notifications


class NotificationOut(Out):
    id: str
    seq: int = Field(description="Its position: positions rise portal-wide in the order "
                                 "notifications were made, so a user's are rising but not "
                                 "consecutive; the SSE event id.")
    kind: NotificationKind
    title: str
    body: str
    link: str | None
    created_at: datetime
    read: bool
    read_at: datetime | None

    @classmethod
    def of(cls, n: Notification) -> NotificationOut:
        return cls(id=n.id, seq=n.seq, kind=n.kind, title=n.title, body=n.body,
                   link=n.link, created_at=n.created_at, read=n.read_at is not None,
                   read_at=n.read_at)


class NotificationPage(Out):
    items: list[NotificationOut]
    next_cursor: str | None
    unread_count: int


class NotificationQuery(ListQuery):
    unread: bool = Field(False, description="Only the unread ones.")


class NotificationPatch(Body):
    read: bool


class ReadAllOut(Out):
    marked: int = Field(description="How many were unread.")


class AnnouncementIn(Body):
    title: str = Field(min_length=1, max_length=200, pattern=r"\S")
    body: str = Field(min_length=1, max_length=5000, pattern=r"\S")
    link: str | None = Field(None, max_length=500, pattern=r"^(/|https://)\S*$",
                             description="A portal path or an https address.")
    cabinet_id: str | None = Field(None, max_length=100,
                                   description="Only this cabinet's users.")
    product_id: str | None = Field(None, max_length=100,
                                   description="Only users of cabinets licensed for it.")


class AnnouncementOut(Out):
    recipients: int


class NotificationSettingIn(Body):
    kind: NotificationKind
    in_app: bool
    email: bool


class NotificationSettingOut(Out):
    kind: NotificationKind
    label: str
    in_app: bool
    email: bool


class NotificationSettingsIn(Body):
    items: list[NotificationSettingIn] = Field(max_length=50)


class NotificationSettingsOut(Out):
    items: list[NotificationSettingOut]

    @classmethod
    def of(cls, chosen: dict[NotificationKind, Preference]) -> NotificationSettingsOut:
        return cls(items=[NotificationSettingOut(kind=kind, label=kind.label,
                                                 in_app=p.in_app, email=p.email)
                          for kind, p in chosen.items()])


class StreamQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    last_event_id: int | None = Field(None, ge=0, alias="lastEventId",
                                      description="As the Last-Event-ID header, for clients "
                                                  "that cannot set headers.")
