"""What every API handler needs: the caller, the services, JSON out, page parameters."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from app.domain.errors import Unauthenticated
from app.domain.paging import PageRequest
from app.domain.users import Principal
from app.services import Services
from app.web.keys import PRINCIPAL, SERVICES, SETTINGS
from app.web.schemas import ListQuery


def principal(request: web.Request) -> Principal:
    found: Principal | None = request.get(PRINCIPAL)
    if found is None:
        raise Unauthenticated("Sign in: send a valid bearer access token.")
    return found


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def json_out(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(text=model.model_dump_json(), status=status,
                        content_type="application/json")


def page_request(query: ListQuery) -> PageRequest:
    return PageRequest.from_cursor(query.limit, query.cursor)


def client_address(request: web.Request) -> str | None:
    """The client's address: the peer, or the first X-Forwarded-For hop when configured."""
    if request.app[SETTINGS].web.trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first[:64]
    return request.remote
