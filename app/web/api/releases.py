"""A product's releases: the list, and staff's registration, withdrawal and scan."""

from __future__ import annotations

from aiohttp import web

from app.services.releases import ReleaseDraft
from app.web.api.common import json_out, page_request, principal, services
from app.web.openapi import ApiRoutes
from app.web.schemas.common import ListQuery
from app.web.schemas.releases import ReleaseCreate, ReleaseOut, ReleasePage, ReleasePatch

api = ApiRoutes("releases")


@api.operation("GET", "/api/v1/products/{id}/releases", summary="A product's releases",
               query=ListQuery, response=ReleasePage,
               description="Newest first. Customers see them for products they hold a "
                           "license for.")
async def list_releases(request: web.Request, query: ListQuery) -> web.Response:
    page = await services(request).releases.list_for_product(
        principal(request), request.match_info["id"], page_request(query))
    return json_out(ReleasePage(items=[ReleaseOut.of(r) for r in page.items],
                                next_cursor=page.next_cursor))


@api.operation("POST", "/api/v1/products/{id}/releases", summary="Register a release",
               body=ReleaseCreate, response=ReleaseOut, status=201, errors=(403, 409),
               description="Staff admins. The files are those under <prefix><version>/ in the "
                           "product's bucket; the body's fields win over release.yaml.")
async def create_release(request: web.Request, body: ReleaseCreate) -> web.Response:
    release = await services(request).releases.register(
        principal(request), request.match_info["id"], ReleaseDraft(
            version=body.version, kind=body.kind, title=body.title, notes=body.notes,
            published_at=body.published_at,
            advisories=[a.model_dump() for a in body.advisories] if body.advisories else None))
    return json_out(ReleaseOut.of(release), status=201)


@api.operation("PATCH", "/api/v1/products/{id}/releases/{release_id}",
               summary="Withdraw (yank) or restore a release", body=ReleasePatch,
               response=ReleaseOut, errors=(403,))
async def update_release(request: web.Request, body: ReleasePatch) -> web.Response:
    release = await services(request).releases.set_yanked(
        principal(request), request.match_info["id"], request.match_info["release_id"],
        body.yanked)
    return json_out(ReleaseOut.of(release))


@api.operation("POST", "/api/v1/products/{id}/scan", summary="Look for new releases now",
               response=ReleasePage, errors=(403,),
               description="Staff admins. Registers the versions found in the product's prefix "
                           "that are not registered yet; answers those.")
async def scan_product(request: web.Request) -> web.Response:
    added = await services(request).releases.scan(principal(request), request.match_info["id"])
    return json_out(ReleasePage(items=[ReleaseOut.of(r) for r in added], next_cursor=None))
