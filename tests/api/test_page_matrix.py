"""Every portal page and form x every role (and signed out) x every relation of the target
to the caller's cabinet, on SQLite and on PostgreSQL.

The same table shape as the API's matrix: a row per route with the status each role
expects in its own cabinet, a child, the parent, a sibling and a foreign cabinet. Whatever
the row, nothing answers 5xx, and an error is an HTML page. A test fails while any page
route of the app has no row.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from app.domain.licensing import DocumentKind
from app.domain.reports import ReportFormat, ReportKind
from app.domain.roles import Role
from app.domain.subscriptions import Cadence
from app.domain.users import Principal
from app.services.subscriptions import SubscriptionDraft
from app.web.keys import SERVICES
from app.web.middlewares import API_PREFIXES
from app.web.pages.session import ACCESS_COOKIE, CSRF_COOKIE, CSRF_FIELD
from tests.api.test_authorization_matrix import (
    ANONYMOUS,
    RELATIONS,
    Expect,
    Placeholders,
    document_in_cabinet,
    everyone,
    everywhere,
    forbidden_in_reach,
    in_cabinet,
    issue_in_cabinet,
    managed_below,
    only_the_customer_user,
    own_certificate,
    product_with_license,
    requests_seen,
    seen,
    staff_admins_only,
    staff_or_forbidden,
    the_product,
    user_in_cabinet,
    users_notification,
)
from tests.world import World, mail_texts, unique

SEED = "page-matrix-csrf-seed"
Form = Callable[[World, str, dict[str, str]], dict[str, str]]


def staff_only(ok: int) -> dict[str, Expect]:
    return {role.value: everywhere(ok if role.is_staff else 403) for role in Role}


def only_the_customer_admin(ok: int) -> dict[str, Expect]:
    return {role.value: everywhere(ok if role is Role.CUSTOMER_ADMIN else 404) for role in Role}


async def admins_scheduled_report(world: World, relation: str) -> dict[str, str]:
    """{id} of a fresh scheduled report of the customer admin's, and {token}: the link its
    e-mail carries."""
    services = world.client.app[SERVICES]
    actor = world.actors[Role.CUSTOMER_ADMIN]
    admin = Principal(actor.user_id, actor.email, Role.CUSTOMER_ADMIN, actor.cabinet.id,
                      actor.cabinet.path)
    made = await services.subscriptions.subscribe(admin, SubscriptionDraft(
        ReportKind.LICENSES, ReportFormat.CSV, Cadence.WEEKLY))
    assert await services.subscriptions.send_due() >= 1
    prefix = f"/reports/scheduled/{made.id}."
    [text] = [t for t in await mail_texts(world.client, actor.email) if prefix in t]
    token = text.split(prefix, 1)[1].split()[0]
    return {"id": made.id, "token": f"{made.id}.{token}"}


def by_role(**statuses: int) -> dict[str, Expect]:
    return {role: everywhere(status) for role, status in statuses.items()}


async def nothing(world: World, relation: str) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class Page:
    method: str
    # The route as the app registers it, and the URL to open (placeholders filled in).
    route: str
    url: str
    expect: dict[str, Expect]
    anonymous: int = 303  # signed out: to the sign-in page
    relational: bool = False
    placeholders: Placeholders = nothing
    form: Form | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # Sent as multipart/form-data: the CSRF token first, then this file in `file`.
    upload: tuple[str, bytes] | None = None


def page(method: str, route: str, expect: dict[str, Expect], *, url: str | None = None,
         **options: Any) -> Page:
    return Page(method, route, url or route, expect, **options)


def by_hand() -> dict[str, Expect]:
    """Staff administrators only: 403 for the others where they see the object."""
    return {"customer_user": forbidden_in_reach(), "customer_admin": forbidden_in_reach(),
            "staff": everywhere(403), "staff_admin": everywhere(303)}


def _documents() -> list[Page]:
    rows = []
    for kind, plural in ((DocumentKind.LICENSE, "licenses"),
                         (DocumentKind.CERTIFICATE, "certificates")):
        rows += [
            page("GET", "/{plural}", everyone(200), url=f"/{plural}"),
            page("GET", "/{plural}/{id}", {
                "customer_user": seen(200), "customer_admin": seen(200),
                "staff": everywhere(200), "staff_admin": everywhere(200)},
                url=f"/{plural}/{{id}}", relational=True, placeholders=document_in_cabinet(kind)),
            page("POST", "/{plural}/{id}/transfer", {
                "customer_user": forbidden_in_reach(), "customer_admin": seen(303),
                "staff": everywhere(403), "staff_admin": everywhere(303)},
                url=f"/{plural}/{{id}}/transfer", relational=True,
                placeholders=document_in_cabinet(kind),
                form=lambda world, relation, values: {"cabinet_id": values["child"]}),
            page("POST", "/{plural}/{id}/extend", by_hand(),
                 url=f"/{plural}/{{id}}/extend", relational=True,
                 placeholders=document_in_cabinet(kind),
                 form=lambda world, relation, values: {"valid_to": "2100-01-01",
                                                       "reason": "goodwill"}),
            page("POST", "/{plural}/{id}/revoke", by_hand(),
                 url=f"/{plural}/{{id}}/revoke", relational=True,
                 placeholders=document_in_cabinet(kind),
                 form=lambda world, relation, values: {"reason": "replaced"}),
        ]
    return rows


PAGES = [
    page("GET", "/", everyone(303)),
    page("GET", "/login", everyone(303), anonymous=200),
    page("POST", "/login", everyone(401), anonymous=401,
         form=lambda world, relation, _: {"email": "nobody@example.test", "password": "no"}),
    page("POST", "/logout", everyone(303)),
    page("GET", "/password/set", everyone(400), anonymous=400),
    page("POST", "/password/set", everyone(400), anonymous=400,
         form=lambda world, relation, _: {"token": "spent", "password": "x" * 20,
                                          "password_again": "x" * 20}),
    page("GET", "/password/forgot", everyone(200), anonymous=200),
    page("POST", "/password/forgot", everyone(202), anonymous=202,
         form=lambda world, relation, _: {"email": "nobody@example.test"}),
    page("GET", "/organisation", everyone(303)),
    page("GET", "/cabinets", everyone(200)),
    page("POST", "/cabinets", by_role(customer_user=403, customer_admin=403, staff=403,
                                      staff_admin=303),
         form=lambda world, relation, _: {"name": unique("customer"), "kind": "customer"}),
    page("GET", "/cabinets/{id}", {
        "customer_user": seen(200), "customer_admin": seen(200),
        "staff": everywhere(200), "staff_admin": everywhere(200)},
        relational=True, placeholders=in_cabinet),
    page("POST", "/cabinets/{id}/users", {
        "customer_user": forbidden_in_reach(), "customer_admin": seen(201),
        "staff": everywhere(403), "staff_admin": everywhere(201)},
        relational=True, placeholders=in_cabinet,
        form=lambda world, relation, _: {"email": f"{unique('new')}@example.test",
                                         "role": "customer_user"}),
    page("POST", "/cabinets/{id}/children", {
        "customer_user": forbidden_in_reach(), "customer_admin": seen(303),
        "staff": everywhere(403), "staff_admin": everywhere(303)},
        relational=True, placeholders=in_cabinet,
        form=lambda world, relation, _: {"child_name": unique("child")}),
    page("POST", "/cabinets/{id}/documents", by_hand(), relational=True, placeholders=in_cabinet,
         form=lambda world, relation, _: {"kind": "license", "product_id": world.product.id,
                                          "edition": "Trial", "seats": "5",
                                          "valid_to": "2099-01-31", "reason": "trial"}),
    page("POST", "/cabinets/{id}/name", {
        "customer_user": forbidden_in_reach(), "customer_admin": managed_below(303),
        "staff": everywhere(403), "staff_admin": everywhere(303)},
        relational=True, placeholders=in_cabinet,
        form=lambda world, relation, _: {"name": unique("renamed")}),
    page("POST", "/cabinets/{id}/users/{user_id}", {
        "customer_user": forbidden_in_reach(), "customer_admin": seen(303),
        "staff": everywhere(403), "staff_admin": everywhere(303)},
        relational=True, placeholders=user_in_cabinet,
        form=lambda world, relation, _: {"operation": "deactivate"}),
    *_documents(),
    page("GET", "/downloads", by_role(customer_user=403, customer_admin=200, staff=200,
                                      staff_admin=200)),
    page("GET", "/audit", by_role(customer_user=403, customer_admin=200, staff=200,
                                  staff_admin=200)),
    page("GET", "/audit.csv", by_role(customer_user=403, customer_admin=200, staff=200,
                                      staff_admin=200)),
    page("GET", "/products", everyone(200)),
    page("GET", "/products/new", staff_admins_only(200)),
    page("POST", "/products/new", staff_admins_only(303),
         form=lambda world, relation, _: {"code": unique("p").lower(), "name": "P",
                                          "bucket": "releases", "parameters": "{}"}),
    page("GET", "/products/{id}", everyone(200), placeholders=product_with_license),
    page("POST", "/products/{id}", staff_admins_only(303), placeholders=the_product,
         form=lambda world, relation, _: {"name": world.product.name, "bucket": "releases",
                                          "prefix": world.product.prefix,
                                          "description": unique("changed"),
                                          "active": "on", "parameters": "{}"}),
    page("POST", "/products/{id}/scan", staff_admins_only(303), placeholders=the_product),
    page("POST", "/products/{id}/releases/{release_id}", staff_admins_only(303),
         placeholders=product_with_license, form=lambda world, relation, _: {"yanked": "1"}),
    page("GET", "/reports", everyone(200)),
    page("POST", "/reports/scheduled", by_role(customer_user=403, customer_admin=303, staff=303,
                                               staff_admin=303),
         form=lambda world, relation, _: {"kind": "licenses", "format": "csv",
                                          "cadence": "weekly"}),
    page("POST", "/reports/scheduled/{id}/cancel", only_the_customer_admin(303),
         placeholders=admins_scheduled_report),
    page("GET", "/reports/scheduled/{token}", only_the_customer_admin(200),
         placeholders=admins_scheduled_report),
    page("GET", "/support", everyone(200)),
    page("GET", "/support/new", by_role(customer_user=200, customer_admin=200, staff=403,
                                        staff_admin=403)),
    page("POST", "/support/new", by_role(customer_user=303, customer_admin=303, staff=403,
                                         staff_admin=403), placeholders=own_certificate,
         form=lambda world, relation, _: {"subject": "Help", "description": "Please.",
                                          "product_id": world.product.id}),
    *(page("GET", route, requests_seen(200), relational=True, placeholders=issue_in_cabinet)
      for route in ("/support/{id}", "/support/{id}/live")),
    page("POST", "/support/{id}/comments", requests_seen(303), relational=True,
         placeholders=issue_in_cabinet, form=lambda world, relation, _: {"body": "News?"}),
    page("POST", "/support/{id}/files", requests_seen(303), relational=True,
         placeholders=issue_in_cabinet, upload=("screen.png", b"\x89PNG")),
    # Not the author: a customer user may not close it; an admin of the organisation may.
    page("POST", "/support/{id}/update", staff_or_forbidden(303, admin=303),
         relational=True, placeholders=issue_in_cabinet,
         form=lambda world, relation, _: {"status": "closed"}),
    page("GET", "/notifications", everyone(200)),
    page("POST", "/notifications/read-all", everyone(303)),
    *(page("POST", "/notifications/{id}/{action}", only_the_customer_user(303),
           url=f"/notifications/{{id}}/{action}", placeholders=users_notification)
      for action in ("read", "unread", "delete")),
    page("GET", "/notifications/open/{id}", only_the_customer_user(303),
         placeholders=users_notification),
    page("GET", "/notifications/settings", everyone(200)),
    page("POST", "/notifications/settings", everyone(303),
         form=lambda world, relation, _: {"announcement:in_app": "on"}),
    page("GET", "/notifications/mail", staff_only(200)),
    page("GET", "/notifications/announce", staff_only(200)),
    page("POST", "/notifications/announce", staff_only(303),
         form=lambda world, relation, _: {"title": "Maintenance", "body": "Tonight.",
                                          "audience": "cabinet", "step": "send",
                                          "target_cabinet": world.own.id}),
    page("GET", "/verify/{number}", everyone(200), anonymous=200, url="/verify/LIC-2026-000000"),
    page("GET", "/docs/api", everyone(200), anonymous=200),
    page("GET", "/problems", everyone(200), anonymous=200),
    page("GET", "/problems/{slug}", everyone(303), anonymous=303, url="/problems/not-found"),
]


def _csrf(world: World) -> str:
    secret = world.client.app[SERVICES].web_secret
    return hmac.new(secret, SEED.encode(), hashlib.sha256).hexdigest()


def _row_id(row: Page) -> str:
    return f"{row.method} {row.url}"


@pytest.mark.parametrize("row", PAGES, ids=_row_id)
async def test_page_matrix(world: World, row: Page) -> None:
    mismatches = []
    for who in [*(r.value for r in Role), ANONYMOUS]:
        for relation in RELATIONS if row.relational else ("own",):
            values = await row.placeholders(world, relation)
            url = row.url
            for name, value in values.items():
                url = url.replace("{" + name + "}", value)
            cookies = {CSRF_COOKIE: SEED}
            if who != ANONYMOUS:
                cookies[ACCESS_COOKIE] = world.actors[Role(who)].access_token
            data: Any = None
            if row.upload is not None:
                data = aiohttp.FormData()
                data.add_field(CSRF_FIELD, _csrf(world))
                data.add_field("file", row.upload[1], filename=row.upload[0])
            elif row.method == "POST":
                data = {CSRF_FIELD: _csrf(world),
                        **(row.form(world, relation, values) if row.form else {})}
            world.client.session.cookie_jar.clear()
            world.client.session.cookie_jar.update_cookies(cookies)
            response = await world.client.request(row.method, url, data=data,
                                                  allow_redirects=False)
            body = await response.read()
            expected = row.anonymous if who == ANONYMOUS else row.expect[who][relation]
            assert response.status < 500, (who, relation, body[:300])
            if response.status != expected:
                mismatches.append(f"{who:>15} on {relation:<8} expected {expected}, "
                                  f"got {response.status}: {body[:160]!r}")
            elif response.status >= 400:
                assert response.content_type == "text/html", (who, relation)
    world.client.session.cookie_jar.clear()
    assert not mismatches, f"{_row_id(row)}:\n" + "\n".join(mismatches)


async def test_every_page_has_a_row(world: World) -> None:
    app = world.client.app
    routes = set()
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource else ""
        if route.method in ("HEAD", "*") or canonical.startswith("/static"):
            continue
        if canonical.startswith(API_PREFIXES):
            continue
        routes.add((route.method, canonical))
    assert routes == {(row.method, row.route) for row in PAGES}
