"""Organisations ("cabinets"): a tree of vendor and customer cabinets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from app.domain.errors import Invalid

MAX_NAME_LENGTH = 200


# The columns a list of organisations sorts by.
CABINET_SORTS = ("name", "kind", "created")


class CabinetKind(StrEnum):
    VENDOR = "vendor"
    CUSTOMER = "customer"


@dataclass
class Cabinet:
    id: str
    name: str
    kind: CabinetKind
    parent_id: str | None
    # Materialised path "/<root id>/.../<own id>/": a subtree is every path with this prefix.
    path: str
    external_id: str | None
    created_at: datetime
    updated_at: datetime
    # Who pays for its purchases, as the billing system names them (customers only).
    contact_email: str | None = None

    @property
    def ancestor_ids(self) -> list[str]:
        """Ids from the root down to the parent."""
        return ancestor_ids(self.path)

    def is_within(self, other: Cabinet) -> bool:
        """True for `other` itself and for every cabinet below it."""
        return self.path.startswith(other.path)


def path_under(parent: Cabinet | None, cabinet_id: str) -> str:
    return f"{parent.path if parent else '/'}{cabinet_id}/"


def check_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in cleaned):
        raise Invalid("The name must not contain control characters.", field="name")
    if not cleaned:
        raise Invalid("The name must not be empty.", field="name")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise Invalid(f"The name is longer than {MAX_NAME_LENGTH} characters.", field="name")
    return cleaned


def check_parent(kind: CabinetKind, parent: Cabinet | None) -> None:
    """A cabinet sits under a cabinet of its own kind: vendors and customers never mix."""
    if parent is not None and parent.kind is not kind:
        raise Invalid(
            f"A {kind.value} organisation cannot be placed under a {parent.kind.value} "
            "organisation.",
            field="parent_id",
        )


def ancestor_ids(path: str) -> list[str]:
    """The ids of the cabinets above the one at `path`, from the root down to its parent."""
    return path.strip("/").split("/")[:-1]
