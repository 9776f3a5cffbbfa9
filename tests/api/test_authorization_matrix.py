"""Every endpoint x every role x every relation of the target to the caller's cabinet.

One table drives it: a row per endpoint, with the status each role expects for a target in
its own cabinet, a child, the parent, a sibling and a foreign cabinet (endpoints that name no
cabinet expect one status per role). A later endpoint joins by adding a row; a test fails
while any authenticated operation of the OpenAPI document has no row. Each row runs on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from app.domain.licensing import DocumentKind
from app.domain.roles import Role
from app.web.keys import OPENAPI, SERVICES
from tests.feed import purchase
from tests.world import World, email, unique

RELATIONS = ("own", "child", "parent", "sibling", "foreign")
ANONYMOUS = "anonymous"
Expect = dict[str, int]


def seen(ok: int) -> Expect:
    """A customer reaches its own cabinet and what is below it; outside that is 404."""
    return {"own": ok, "child": ok, "parent": 404, "sibling": 404, "foreign": 404}


def everywhere(status: int) -> Expect:
    return dict.fromkeys(RELATIONS, status)


def managed_below(ok: int) -> Expect:
    """A customer admin may act on cabinets below their own, not on their own."""
    return {"own": 403, "child": ok, "parent": 404, "sibling": 404, "foreign": 404}


def forbidden_in_reach() -> Expect:
    return seen(403)


Placeholders = Callable[[World, str], Awaitable[dict[str, str]]]


async def in_cabinet(world: World, relation: str) -> dict[str, str]:
    """{id} is the target cabinet."""
    return {"id": world.cabinet(relation).id}


async def user_in_cabinet(world: World, relation: str) -> dict[str, str]:
    """{id} is the target cabinet, {user_id} a fresh user in it."""
    cabinet = world.cabinet(relation)
    return {"id": cabinet.id, "user_id": await world.add_user(cabinet)}


async def the_product(world: World, relation: str) -> dict[str, str]:
    return {"id": world.product.id}


def document_in_cabinet(kind: DocumentKind) -> Placeholders:
    async def values(world: World, relation: str) -> dict[str, str]:
        """{id}: a fresh document of the target cabinet; "child": a fresh cabinet below it."""
        cabinet = world.cabinet(relation)
        document = await world.add_document(kind, cabinet)
        return {"id": document.id, "child": (await world.add_child(cabinet)).id}
    return values


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    expect: dict[str, Expect]
    # Gets the world, the relation and the placeholders' values.
    body: Callable[[World, str, dict[str, str]], Any] | None = None
    # True: the target is a cabinet in each relation to the caller's; False: one target.
    relational: bool = False
    placeholders: Placeholders = in_cabinet
    # An endless response (server-sent events): only its status is read, then it is closed.
    streaming: bool = False
    # Sends this file as multipart/form-data in the field `file` (instead of a JSON body).
    upload: tuple[str, bytes] | None = None

    async def request(self, world: World, relation: str) -> tuple[str, Any]:
        values = await self.placeholders(world, relation) if "{" in self.path or self.body \
            else {}
        url = self.path
        for name, value in values.items():
            url = url.replace("{" + name + "}", value)
        return url, self.body(world, relation, values) if self.body else None


def with_release() -> Placeholders:
    async def values(world: World, relation: str) -> dict[str, str]:
        """{id}: a fresh license of the target cabinet; {file_id}: an open file of it."""
        license_ = await world.add_document(DocumentKind.LICENSE, world.cabinet(relation))
        release = await world.publish(unique("v"), {"image.iso": b"image"})
        return {"id": license_.id, "file_id": release.artifacts[0].id}
    return values


async def product_with_license(world: World, relation: str) -> dict[str, str]:
    """{id}: the product, which the customers' own cabinet holds a license for."""
    await world.add_document(DocumentKind.LICENSE, world.own)
    release = await world.publish(unique("v"), {})
    return {"id": world.product.id, "release_id": release.id}


async def users_notification(world: World, relation: str) -> dict[str, str]:
    """{id}: a fresh notification of the customer user (everyone else's is 404)."""
    from datetime import UTC, datetime

    from app.domain.notifications import Message, NotificationKind
    from app.web.keys import SERVICES
    from tests.contract.test_notifications_storage import add

    async with world.client.app[SERVICES].storage.unit_of_work() as uow:
        [made] = await add(uow, [world.actors[Role.CUSTOMER_USER].user_id],
                           Message(NotificationKind.ANNOUNCEMENT, "Hello", "Matrix"),
                           datetime.now(UTC))
        await uow.commit()
    return {"id": made.id}


async def issue_in_cabinet(world: World, relation: str) -> dict[str, str]:
    """{id}: a fresh request of the target cabinet (by a user of it), with {comment_id} and
    {attachment_id} of its author's."""
    services = world.client.app[SERVICES]
    issue, author = await world.add_issue(world.cabinet(relation))
    comment = await services.conversation.comment(author, issue.id, "Still broken.")

    async def data() -> AsyncIterator[bytes]:
        yield b"trace"

    attachment = await services.conversation.attach(author, issue.id, "trace.log", data())
    return {"id": issue.id, "comment_id": comment.id, "attachment_id": attachment.id}


async def own_certificate(world: World, relation: str) -> dict[str, str]:
    """The customers' own cabinet holds a valid certificate: they may open a request."""
    await world.add_document(DocumentKind.CERTIFICATE, world.own)
    return {}


def requests_seen(ok: int) -> dict[str, Expect]:
    """A customer user sees their own organisation's requests, a customer admin also those
    below it, staff all."""
    return {"customer_user": {**everywhere(404), "own": ok}, "customer_admin": seen(ok),
            "staff": everywhere(ok), "staff_admin": everywhere(ok)}


def staff_or_forbidden(ok: int, admin: int | None = None) -> dict[str, Expect]:
    """Staff may; a customer in reach is refused (or, with `admin`, its admin gets that)."""
    return {"customer_user": {**everywhere(404), "own": 403},
            "customer_admin": seen(admin if admin is not None else 403),
            "staff": everywhere(ok), "staff_admin": everywhere(ok)}


def only_the_customer_user(ok: int) -> dict[str, Expect]:
    return {role.value: everywhere(ok if role is Role.CUSTOMER_USER else 404) for role in Role}


def everyone(ok: int) -> dict[str, Expect]:
    return {role.value: everywhere(ok) for role in Role}


def staff_admins_only(ok: int) -> dict[str, Expect]:
    return {role.value: everywhere(ok if role is Role.STAFF_ADMIN else 403) for role in Role}


ROWS = [
    Row("GET", "/api/v1/me", everyone(200)),
    # Signed by the billing system, not by a user: no bearer token opens it.
    Row("POST", "/api/v1/feed/purchases", everyone(401),
        body=lambda world, relation, _: purchase(world.product.code)),
    Row("GET", "/api/v1/cabinets", everyone(200)),
    Row("GET", "/api/v1/products", everyone(200)),
    Row("GET", "/api/v1/products/{id}", everyone(200), placeholders=the_product),
    Row("POST", "/api/v1/products", staff_admins_only(201),
        body=lambda world, relation, _: {"code": unique("p"), "name": "P",
                                      "bucket": "releases"}),
    Row("PATCH", "/api/v1/products/{id}", staff_admins_only(200), placeholders=the_product,
        body=lambda world, relation, _: {"description": unique("changed")}),
    *(row for kind, plural in ((DocumentKind.LICENSE, "licenses"),
                               (DocumentKind.CERTIFICATE, "certificates")) for row in (
        Row("GET", f"/api/v1/{plural}", everyone(200)),
        Row("GET", f"/api/v1/{plural}/{{id}}", relational=True,
            placeholders=document_in_cabinet(kind), expect={
                "customer_user": seen(200), "customer_admin": seen(200),
                "staff": everywhere(200), "staff_admin": everywhere(200)}),
        Row("POST", f"/api/v1/{plural}/{{id}}/transfer", relational=True,
            placeholders=document_in_cabinet(kind),
            body=lambda world, relation, values: {"cabinet_id": values["child"]}, expect={
                "customer_user": forbidden_in_reach(), "customer_admin": seen(200),
                "staff": everywhere(403), "staff_admin": everywhere(200)}),
    )),
    Row("GET", "/api/v1/products/{id}/releases", everyone(200),
        placeholders=product_with_license),
    Row("POST", "/api/v1/products/{id}/releases", staff_admins_only(201),
        placeholders=the_product, body=lambda world, relation, _: {"version": unique("v")}),
    Row("PATCH", "/api/v1/products/{id}/releases/{release_id}", staff_admins_only(200),
        placeholders=product_with_license, body=lambda world, relation, _: {"yanked": True}),
    Row("POST", "/api/v1/products/{id}/scan", staff_admins_only(200), placeholders=the_product),
    Row("GET", "/api/v1/downloads", {
        "customer_user": everywhere(403), "customer_admin": everywhere(200),
        "staff": everywhere(200), "staff_admin": everywhere(200)}),
    *(Row("GET", path, relational=True, placeholders=with_release(), expect={
        "customer_user": seen(200), "customer_admin": seen(200),
        "staff": everywhere(200), "staff_admin": everywhere(200)})
      for path in ("/api/v1/licenses/{id}/images", "/api/v1/licenses/{id}/images/{file_id}",
                   "/api/v1/licenses/{id}/images/archive?file={file_id}")),
    Row("GET", "/api/v1/notifications", everyone(200)),
    Row("POST", "/api/v1/notifications", {
        "customer_user": everywhere(403), "customer_admin": everywhere(403),
        "staff": everywhere(201), "staff_admin": everywhere(201)},
        body=lambda world, relation, _: {"title": "Maintenance", "body": "Tonight.",
                                      "cabinet_id": world.own.id}),
    Row("PATCH", "/api/v1/notifications/{id}", only_the_customer_user(200),
        placeholders=users_notification, body=lambda world, relation, _: {"read": True}),
    Row("DELETE", "/api/v1/notifications/{id}", only_the_customer_user(204),
        placeholders=users_notification),
    Row("POST", "/api/v1/notifications/read-all", everyone(200)),
    Row("GET", "/api/v1/notifications/stream", everyone(200), streaming=True),
    Row("GET", "/api/v1/me/notification-settings", everyone(200)),
    Row("PUT", "/api/v1/me/notification-settings", everyone(200),
        body=lambda world, relation, _: {"items": [
            {"kind": "announcement", "in_app": True, "email": False}]}),
    Row("GET", "/api/v1/cabinets/{id}", relational=True, expect={
        "customer_user": seen(200), "customer_admin": seen(200),
        "staff": everywhere(200), "staff_admin": everywhere(200)}),
    Row("GET", "/api/v1/cabinets/{id}/children", relational=True, expect={
        "customer_user": seen(200), "customer_admin": seen(200),
        "staff": everywhere(200), "staff_admin": everywhere(200)}),
    Row("PATCH", "/api/v1/cabinets/{id}", relational=True, expect={
        "customer_user": forbidden_in_reach(), "customer_admin": managed_below(200),
        "staff": everywhere(403), "staff_admin": everywhere(200)},
        body=lambda world, relation, _: {"name": unique("renamed")}),
    # The target is the parent named in the body.
    Row("POST", "/api/v1/cabinets", relational=True, expect={
        "customer_user": forbidden_in_reach(), "customer_admin": seen(201),
        "staff": everywhere(403), "staff_admin": everywhere(201)},
        body=lambda world, relation, _: {"name": unique("new"),
                                      "parent_id": world.cabinet(relation).id}),
    Row("GET", "/api/v1/cabinets/{id}/users", relational=True, expect={
        "customer_user": seen(200), "customer_admin": seen(200),
        "staff": everywhere(200), "staff_admin": everywhere(200)}),
    Row("POST", "/api/v1/cabinets/{id}/users", relational=True, expect={
        "customer_user": forbidden_in_reach(), "customer_admin": seen(201),
        "staff": everywhere(403), "staff_admin": everywhere(201)},
        body=lambda world, relation, _: {"email": email("new"), "role": "customer_user"}),
    Row("PATCH", "/api/v1/cabinets/{id}/users/{user_id}", relational=True,
        placeholders=user_in_cabinet, expect={
        "customer_user": forbidden_in_reach(), "customer_admin": seen(200),
        "staff": everywhere(403), "staff_admin": everywhere(200)},
        body=lambda world, relation, _: {"name": "Changed Name"}),
    Row("POST", "/api/v1/cabinets/{id}/users/{user_id}/password-link", relational=True,
        placeholders=user_in_cabinet, expect={
        "customer_user": forbidden_in_reach(), "customer_admin": seen(202),
        "staff": everywhere(403), "staff_admin": everywhere(202)}),
    Row("DELETE", "/api/v1/cabinets/{id}/users/{user_id}", relational=True,
        placeholders=user_in_cabinet, expect={
        "customer_user": forbidden_in_reach(), "customer_admin": seen(204),
        "staff": everywhere(403), "staff_admin": everywhere(204)}),
    # Support requests: the target is a request of a cabinet in each relation.
    Row("GET", "/api/v1/issues", everyone(200)),
    Row("POST", "/api/v1/issues", {
        "customer_user": everywhere(201), "customer_admin": everywhere(201),
        "staff": everywhere(403), "staff_admin": everywhere(403)},
        placeholders=own_certificate,
        body=lambda world, relation, _: {"subject": "Help", "description": "Please.",
                                         "product_id": world.product.id}),
    *(Row("GET", path, relational=True, placeholders=issue_in_cabinet,
          expect=requests_seen(200))
      for path in ("/api/v1/issues/{id}", "/api/v1/issues/{id}/comments",
                   "/api/v1/issues/{id}/attachments",
                   "/api/v1/issues/{id}/attachments/{attachment_id}")),
    # Not the author: a customer user may not edit; an admin of the organisation may.
    Row("PATCH", "/api/v1/issues/{id}", relational=True, placeholders=issue_in_cabinet,
        expect=staff_or_forbidden(200, admin=200),
        body=lambda world, relation, _: {"subject": unique("Edited")}),
    Row("POST", "/api/v1/issues/{id}/comments", relational=True,
        placeholders=issue_in_cabinet, expect=requests_seen(201),
        body=lambda world, relation, _: {"body": "Any news?"}),
    Row("POST", "/api/v1/issues/{id}/attachments", relational=True,
        placeholders=issue_in_cabinet, expect=requests_seen(201),
        upload=("screen.png", b"\x89PNG")),
    # Comments and files are their author's (staff: any).
    Row("PATCH", "/api/v1/issues/{id}/comments/{comment_id}", relational=True,
        placeholders=issue_in_cabinet, expect=staff_or_forbidden(200),
        body=lambda world, relation, _: {"body": "Edited."}),
    Row("DELETE", "/api/v1/issues/{id}/comments/{comment_id}", relational=True,
        placeholders=issue_in_cabinet, expect=staff_or_forbidden(204)),
    Row("DELETE", "/api/v1/issues/{id}/attachments/{attachment_id}", relational=True,
        placeholders=issue_in_cabinet, expect=staff_or_forbidden(204)),
    # Reports: an organisation's by cabinet_id, as its JSON list would be; outside: 404.
    *(Row("GET", f"/api/v1/{plural}?format={fmt}&cabinet_id={{id}}", relational=True,
          placeholders=in_cabinet, expect={
              "customer_user": {**everywhere(404), "own": 200} if plural == "issues"
              else seen(200),
              "customer_admin": seen(200), "staff": everywhere(200),
              "staff_admin": everywhere(200)})
      for plural in ("licenses", "certificates", "issues") for fmt in ("csv", "xlsx", "pdf")),
    # Signed by the helpdesk's side, not by a user: no bearer token opens it.
    Row("POST", "/api/v1/feed/support", everyone(401),
        body=lambda world, relation, _: {"tickets": ["T1"]}),
]


def _row_id(row: Row) -> str:
    return f"{row.method} {row.path}"


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
async def test_authorization_matrix(world: World, row: Row) -> None:
    relations = RELATIONS if row.relational else ("own",)
    mismatches = []
    for who in [*(r.value for r in Role), ANONYMOUS]:
        for relation in relations:
            expected = 401 if who == ANONYMOUS else row.expect[who][relation]
            headers = {} if who == ANONYMOUS else world.actors[Role(who)].headers
            url, body = await row.request(world, relation)
            if row.upload is not None:
                form = aiohttp.FormData()
                form.add_field("file", row.upload[1], filename=row.upload[0])
                response = await world.client.request(row.method, url, data=form,
                                                      headers=headers)
            else:
                response = await world.client.request(row.method, url, json=body,
                                                      headers=headers)
            if row.streaming and response.status == 200:
                assert response.content_type == "text/event-stream"
                response.close()
                continue
            payload = await response.read()
            if response.status != expected:
                mismatches.append(f"{who:>15} on {relation:<8} expected {expected}, "
                                  f"got {response.status}: {payload[:160]!r}")
            elif response.status >= 400:
                assert response.content_type == "application/problem+json", (who, relation)
    assert not mismatches, f"{_row_id(row)}:\n" + "\n".join(mismatches)


async def test_every_authenticated_operation_has_a_row(world: World) -> None:
    document = world.client.app[OPENAPI]
    authenticated = {(method.upper(), path) for path, operations in document["paths"].items()
                     for method, operation in operations.items() if operation["security"]}
    assert authenticated == {(row.method, row.path.split("?")[0]) for row in ROWS}
