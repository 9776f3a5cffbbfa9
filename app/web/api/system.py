from __future__ import annotations

import logging

from aiohttp import web

from app.web.api.common import json_out, services
from app.web.keys import DRAINING, OPENAPI
from app.web.openapi import ApiRoutes, document_json
from app.web.schemas.system import Health, Jwks, OpenApiDocument
from ports.storage import StorageUnavailable

api = ApiRoutes("system")
log = logging.getLogger(__name__)


@api.operation("GET", "/healthz", summary="The process is up", auth=False, response=Health)
async def healthz(request: web.Request) -> web.Response:
    return json_out(Health(status="ok"))


@api.operation("GET", "/readyz", summary="The process can serve: its storage answers",
               auth=False, response=Health, extra_responses={503: ("Storage unavailable.", Health)})
async def readyz(request: web.Request) -> web.Response:
    if request.app[DRAINING].is_set():  # stopping: the balancer should send no more here
        return json_out(Health(status="unavailable", checks={"process": "stopping"}), 503)
    try:
        await services(request).storage.ping()
    except StorageUnavailable as exc:
        log.error("not ready: %s", exc)
        return json_out(Health(status="unavailable", checks={"storage": "unavailable"}), 503)
    return json_out(Health(status="ok", checks={"storage": "ok"}))


@api.operation("GET", "/.well-known/jwks.json", summary="Public keys that verify access tokens",
               auth=False, response=Jwks)
async def jwks(request: web.Request) -> web.Response:
    return web.json_response(services(request).auth.public_jwks(),
                             headers={"Cache-Control": "public, max-age=300"})


@api.operation("GET", "/.well-known/license-keys.json",
               summary="Public keys that verify license files", auth=False, response=Jwks)
async def license_keys(request: web.Request) -> web.Response:
    return web.json_response(services(request).documents.license_keys(),
                             headers={"Cache-Control": "public, max-age=300"})


@api.operation("GET", "/api/v1/openapi.json", summary="This document", auth=False,
               response=OpenApiDocument)
async def openapi_document(request: web.Request) -> web.Response:
    return web.Response(text=document_json(request.app[OPENAPI]),
                        content_type="application/json")
