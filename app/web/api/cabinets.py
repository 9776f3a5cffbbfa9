from __future__ import annotations

from aiohttp import web

from app.services.cabinets import UNSET, CabinetChanges
from app.web.api.common import json_out, page_request, principal, services
from app.web.openapi import ApiRoutes
from app.web.schemas.cabinets import CabinetCreate, CabinetOut, CabinetPage, CabinetPatch
from app.web.schemas.common import ListQuery

api = ApiRoutes("cabinets")


@api.operation("GET", "/api/v1/cabinets", summary="Cabinets the caller may see",
               query=ListQuery, response=CabinetPage)
async def list_cabinets(request: web.Request, query: ListQuery) -> web.Response:
    page = await services(request).cabinets.list_visible(principal(request),
                                                         page_request(query))
    return json_out(CabinetPage(items=[CabinetOut.of(c) for c in page.items],
                                next_cursor=page.next_cursor))


@api.operation("POST", "/api/v1/cabinets", summary="Create a cabinet", body=CabinetCreate,
               response=CabinetOut, status=201, errors=(403, 409),
               description="Staff admins anywhere; a customer admin creates a child inside "
                           "their own subtree.")
async def create_cabinet(request: web.Request, body: CabinetCreate) -> web.Response:
    cabinet = await services(request).cabinets.create(
        principal(request), body.name, body.kind, body.parent_id, body.external_id)
    return json_out(CabinetOut.of(cabinet), status=201)


@api.operation("GET", "/api/v1/cabinets/{id}", summary="One cabinet", response=CabinetOut)
async def get_cabinet(request: web.Request) -> web.Response:
    cabinet = await services(request).cabinets.get(principal(request), request.match_info["id"])
    return json_out(CabinetOut.of(cabinet))


@api.operation("PATCH", "/api/v1/cabinets/{id}", summary="Change a cabinet", body=CabinetPatch,
               response=CabinetOut, errors=(403, 409),
               description="A customer admin renames the cabinets below their own; staff "
                           "admins also move cabinets (`parent_id`) and set billing ids.")
async def update_cabinet(request: web.Request, body: CabinetPatch) -> web.Response:
    given = body.model_fields_set
    changes = CabinetChanges(
        name=body.name,
        external_id=body.external_id if "external_id" in given else UNSET,
        parent_id=body.parent_id if "parent_id" in given else UNSET)
    cabinet = await services(request).cabinets.update(
        principal(request), request.match_info["id"], changes)
    return json_out(CabinetOut.of(cabinet))


@api.operation("GET", "/api/v1/cabinets/{id}/children", summary="Direct children of a cabinet",
               query=ListQuery, response=CabinetPage)
async def list_children(request: web.Request, query: ListQuery) -> web.Response:
    page = await services(request).cabinets.children(
        principal(request), request.match_info["id"], page_request(query))
    return json_out(CabinetPage(items=[CabinetOut.of(c) for c in page.items],
                                next_cursor=page.next_cursor))
