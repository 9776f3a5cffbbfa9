"""Pages anyone may open: the check of a document number, the API reference, error types."""

from __future__ import annotations

import re

from aiohttp import web

from app.domain.licensing import NUMBER_PATTERN
from app.web.keys import API_REFERENCE, OPENAPI, SERVICES
from app.web.pages.render import render, see_other
from app.web.problems import PROBLEM_TYPES

routes = web.RouteTableDef()


@routes.get("/verify/{number}")
async def verify(request: web.Request) -> web.StreamResponse:
    """Public: whether a document number is valid today, and nothing more."""
    number = request.match_info["number"].upper()
    found = None
    if re.fullmatch(NUMBER_PATTERN, number):
        found = await request.app[SERVICES].licensing.verify(number)
    valid = found is not None and found[1]
    return render(request, "verify.html", {
        "number": number, "valid": valid,
        "label": found[0].label.lower() if found else "document"})


@routes.get("/docs/api")
async def api_docs(request: web.Request) -> web.StreamResponse:
    return render(request, "api_docs.html", {"doc": request.app[OPENAPI],
                                             "groups": request.app[API_REFERENCE]})


@routes.get("/problems")
async def problem_types(request: web.Request) -> web.StreamResponse:
    return render(request, "problems.html", {"problems": PROBLEM_TYPES})


@routes.get("/problems/{slug}")
async def problem_type(request: web.Request) -> web.StreamResponse:
    if request.match_info["slug"] not in PROBLEM_TYPES:
        raise web.HTTPNotFound()
    return see_other(f"/problems#{request.match_info['slug']}")
