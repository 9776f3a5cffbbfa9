"""Typed keys for application and per-request state."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from app.config import Settings
from app.domain.users import Principal
from app.services import Services
from app.web.pages.api_reference import Operation
from app.web.stream import NotificationHub

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
OPENAPI = web.AppKey("openapi", dict[str, Any])
# The API reference page's groups of operations, read from OPENAPI once.
API_REFERENCE = web.AppKey("api_reference", dict[str, list[Operation]])
HUB = web.AppKey("hub", NotificationHub)
# Work still running after its answer went (an answer finished for a client that left, a
# password link made after "on its way" was said): shutdown waits for it.
LEFT_ANSWERS = web.AppKey("left_answers", set[asyncio.Future[Any]])
# Set once the process is stopping (app/web/serve.py): answers close their connections.
DRAINING = web.AppKey("draining", asyncio.Event)

REQUEST_ID = web.RequestKey("request_id", str)
# Set only for an authenticated request: read it with request.get(PRINCIPAL).
PRINCIPAL = web.RequestKey("principal", Principal)
# Cookies to set or clear on whatever response this request ends with: {name: value or None}.
SESSION_COOKIES = web.RequestKey("session_cookies", dict[str, str | None])
