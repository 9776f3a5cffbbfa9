"""What every API handler needs: the caller, the services, JSON out, page parameters."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Coroutine
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from app.domain.errors import Unauthenticated
from app.domain.paging import PageRequest
from app.domain.users import Principal
from app.services import Services
from app.web.keys import LEFT_ANSWERS, PRINCIPAL, SERVICES, SETTINGS
from app.web.schemas.common import ListQuery


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


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[IPv4Network | IPv6Network, ...]:
    return tuple(ip_network(entry, strict=False) for entry in entries)


def from_trusted_proxy(request: web.Request) -> bool:
    """Whether the connection comes from one of the portal's own proxies (`web.proxy_hops`
    set, and the peer in `web.trusted_proxies`): only then are its X-Forwarded-* headers
    and its X-Request-ID believed."""
    web_settings = request.app[SETTINGS].web
    if not web_settings.proxy_hops or not request.remote:
        return False
    try:
        peer = ip_address(request.remote)
    except ValueError:
        return False
    return any(peer in network for network in _networks(web_settings.trusted_proxies))


def behind_https(request: web.Request) -> bool:
    """The client reached the portal's proxy over https (X-Forwarded-Proto, from a trusted
    proxy only)."""
    return from_trusted_proxy(request) and \
        request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def client_address(request: web.Request) -> str | None:
    """The client's address. Behind `web.proxy_hops` proxies of one's own, each appending
    to X-Forwarded-For, it is the entry that many places from the end: whatever a client
    writes into the header itself lands further left and is ignored. From anyone but a
    trusted proxy, the header is ignored altogether."""
    hops = request.app[SETTINGS].web.proxy_hops
    if hops and from_trusted_proxy(request):
        chain = [entry.strip() for entry in request.headers.get("X-Forwarded-For", "").split(",")]
        chain = [entry for entry in chain if entry]
        if len(chain) >= hops:
            return chain[-hops][:64]
    return request.remote


log = logging.getLogger(__name__)


def after_answer(request: web.Request, work: Coroutine[Any, Any, Any], what: str) -> None:
    """Do `work` once the answer has gone, so that how long it takes tells the caller
    nothing; shutdown waits for it, and a failure is logged (the caller was told the same
    either way)."""
    task = asyncio.ensure_future(work)
    left = request.app[LEFT_ANSWERS]
    left.add(task)
    task.add_done_callback(left.discard)

    def logged(done: asyncio.Future[Any]) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.error("%s failed after its answer: %s", what, done.exception())
    task.add_done_callback(logged)
