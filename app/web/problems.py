"""RFC 9457 problem details: every API error has one of these stable types."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from app.web.keys import REQUEST_ID

PROBLEM_JSON = "application/problem+json"

# slug -> (status, title, what it means); the docs page at /problems lists them.
PROBLEM_TYPES: dict[str, tuple[int, str, str]] = {
    "bad-request": (400, "Bad request", "The request cannot be read: bad JSON, a bad query "
                    "parameter or an unknown format."),
    "bad-cursor": (400, "Invalid cursor", "The paging cursor was not handed out by this API."),
    "invalid-token": (400, "Invalid or expired link", "A one-time link is unknown, used or "
                      "expired."),
    "unauthenticated": (401, "Authentication required", "No credentials, or they are wrong, "
                        "expired or revoked. The answer never says which."),
    "forbidden": (403, "Forbidden", "You can see the object but may not do this to it."),
    "csrf": (403, "CSRF check failed", "A form or a cookie-authenticated call lacked the "
             "anti-forgery token."),
    "not-found": (404, "Not found", "No such object, or it is outside your organisation."),
    "method-not-allowed": (405, "Method not allowed", "The path exists but not with this method."),
    "request-timeout": (408, "Request timeout", "The body stopped arriving for "
                        "server.body_timeout_seconds."),
    "conflict": (409, "Conflict", "The change clashes with existing data, e.g. a taken e-mail."),
    "payload-too-large": (413, "Payload too large", "The body exceeds web.max_body_bytes, or a "
                          "file exceeds support.max_attachment_bytes."),
    "unsupported-media-type": (415, "Unsupported media type", "Send JSON with Content-Type "
                               "application/json; a file must be of a type "
                               "support.attachment_types accepts."),
    "validation-error": (422, "Invalid input", "The body parses but breaks a rule; `errors` "
                         "names each field."),
    "too-many-requests": (429, "Too many attempts", "Wait for Retry-After seconds."),
    "internal-error": (500, "Internal error", "A bug. The request id finds it in the log."),
    "service-unavailable": (503, "Service unavailable", "A dependency (the database) is down; "
                            "nothing was changed. Try again."),
}

_BY_STATUS = {status: slug for slug, (status, _, _) in reversed(PROBLEM_TYPES.items())}


def slug_for_status(status: int) -> str:
    return _BY_STATUS.get(status, "bad-request" if status < 500 else "internal-error")


def problem(request: web.Request, status: int, slug: str, detail: str, *,
            title: str | None = None, errors: list[dict[str, str]] | None = None,
            headers: Mapping[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {
        "type": f"/problems/{slug}",
        "title": title or PROBLEM_TYPES.get(slug, (status, "Error", ""))[1],
        "status": status,
        "detail": detail,
        "instance": request.path,
        "request_id": request.get(REQUEST_ID, ""),
    }
    if errors:
        body["errors"] = errors
    return web.Response(status=status, text=json.dumps(body), content_type=PROBLEM_JSON,
                        headers=headers)
