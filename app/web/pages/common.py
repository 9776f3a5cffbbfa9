"""What every portal page handler shares: the signed-in check, forms, the page size."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from app.domain.users import Principal
from app.web.keys import PRINCIPAL
from app.web.pages.render import login_redirect

PAGE_SIZE = 50
PageHandler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]


def signed_in(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def page(request: web.Request) -> web.StreamResponse:
        principal = request.get(PRINCIPAL)
        if principal is None:
            return login_redirect(request)
        return await handler(request, principal)
    page.__name__ = handler.__name__
    return page


async def form_of(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
