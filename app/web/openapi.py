"""API operations declared once: the route, how its input is parsed, and its OpenAPI entry.

Handlers are registered with `ApiRoutes.operation(...)`; the same declarations build the
route table and the OpenAPI 3.1 document, so the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
import json
import re
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from app.domain.errors import DomainError, SlowRequest, Unauthenticated
from app.web.keys import PRINCIPAL, SETTINGS
from app.web.problems import PROBLEM_JSON
from app.web.schemas.system import Problem

Handler = Callable[..., Awaitable[web.StreamResponse]]
RawCheck = Callable[[web.Request, bytes], None]
_PATH_PARAM = re.compile(r"{(\w+)}")
# Errors any operation may answer; each operation adds its own.
COMMON_ERRORS = (400, 404, 405, 413, 429, 503)


class RequestInvalid(DomainError):
    """The body or the query does not match the operation's schema."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, str]]) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = "validation-error" if status == 422 else "bad-request"
        self.title = "Invalid input" if status == 422 else "Bad request"
        self.errors = errors


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: bool
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    errors: tuple[int, ...]
    description: str = ""
    # status -> (description, body model or None); overrides the error entry of that status
    extra_responses: dict[int, tuple[str, type[BaseModel] | None]] = field(default_factory=dict)
    # Checks the raw body before it is parsed (a webhook's signature); raises to refuse it.
    verify_raw: RawCheck | None = None
    # A security scheme other than the bearer token, by its name in the document.
    scheme: str | None = None
    # Other media types the success response may have (chosen by `format` or Accept).
    media: tuple[str, ...] = ()
    # A file uploaded as multipart/form-data in the field of this name (the handler reads
    # it as a stream).
    upload: str | None = None


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [{"field": ".".join(str(part) for part in error["loc"]) or "(body)",
             "message": error["msg"]} for error in exc.errors()]


# Endpoints that answer a JSON body within milliseconds: finished even after their client
# leaves (see middlewares.finish_short_answers).
SHORT_ANSWERS: weakref.WeakSet[Handler] = weakref.WeakSet()


def _wrap(op: Operation) -> Handler:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        if op.auth and request.get(PRINCIPAL) is None:
            raise Unauthenticated("Sign in: send a valid bearer access token.")
        kwargs: dict[str, Any] = {}
        if op.query is not None:
            try:
                kwargs["query"] = op.query.model_validate(_query_values(request, op.query))
            except ValidationError as exc:
                raise RequestInvalid(400, "A query parameter is invalid.",
                                     field_errors(exc)) from None
        if op.body is not None:
            raw = await read_body(request) if request.body_exists else b""
            if op.verify_raw is not None:
                op.verify_raw(request, raw)
            if raw and request.content_type != "application/json" \
                    and not request.content_type.endswith("+json"):
                raise RequestInvalid(415, "Send the body as application/json.", [])
            kwargs["body"] = parse_json(op.body, raw)
        return await op.handler(request, **kwargs)

    endpoint.__name__ = op.handler.__name__
    if op.response is not None:
        SHORT_ANSWERS.add(endpoint)
    return endpoint


async def read_body(request: web.Request) -> bytes:
    """The whole body, within server.body_timeout_seconds (408 after: a client that stops
    sending must not hold the connection)."""
    try:
        async with asyncio.timeout(request.app[SETTINGS].server.body_timeout_seconds):
            return await request.read()
    except TimeoutError:
        raise SlowRequest("The body stopped arriving before it was whole.") from None


def _query_values(request: web.Request, model: type[BaseModel]) -> dict[str, Any]:
    """The query as the model wants it: a list where the field is one, else one value."""
    values: dict[str, Any] = {}
    for name in request.query:
        field_info = model.model_fields.get(name)
        wants_list = field_info is not None and "list" in str(field_info.annotation)
        values[name] = request.query.getall(name) if wants_list else request.query[name]
    return values


M = TypeVar("M", bound=BaseModel)


def parse_json(model: type[M], raw: bytes) -> M:
    """A JSON body as `model`; RequestInvalid (400 unreadable, 422 invalid) naming fields."""
    try:
        parsed = model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        errors = field_errors(exc)
        if any(e["message"].startswith("Invalid JSON") for e in errors):
            raise RequestInvalid(400, "The body is not valid JSON.", errors) from None
        raise RequestInvalid(422, "The body breaks the schema.", errors) from None
    # No database stores NUL in text, and no name or address needs one. JSON can carry it
    # only escaped, so a body without that escape needs no walk through its fields.
    if b"\\u0000" in raw and (where := _nul_in(parsed.model_dump())) is not None:
        raise RequestInvalid(422, "The body breaks the schema.", [
            {"field": where or "(body)", "message": "must not contain the NUL character"}])
    return parsed


def _nul_in(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (or key) holding a NUL character, if any."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return inner
            if (found := _nul_in(item, inner)) is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _nul_in(item, f"{path}.{index}" if path else str(index))) is not None:
                return found
    return None


class ApiRoutes:
    """The operations of one API module."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.operations: list[Operation] = []

    def operation(self, method: str, path: str, *, summary: str, auth: bool = True,
                  body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
                  response: type[BaseModel] | None = None, status: int = 200,
                  errors: Iterable[int] = (), description: str = "",
                  extra_responses: dict[int, tuple[str, type[BaseModel] | None]] | None = None,
                  verify_raw: RawCheck | None = None, scheme: str | None = None,
                  media: tuple[str, ...] = (), upload: str | None = None,
                  ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            own_errors = set(errors) | set(COMMON_ERRORS)
            if auth or scheme:
                own_errors.add(401)
            if body is not None or upload is not None:
                own_errors |= {415, 422}
            self.operations.append(Operation(
                method=method, path=path, handler=handler, summary=summary, tag=self.tag,
                auth=auth, body=body, query=query, response=response, status=status,
                errors=tuple(sorted(own_errors)), description=description,
                extra_responses=extra_responses or {}, verify_raw=verify_raw, scheme=scheme,
                media=media, upload=upload))
            return handler
        return register


def route_table(operations: Iterable[Operation]) -> list[web.RouteDef]:
    return [web.route(op.method, op.path, _wrap(op),
                      **({"allow_head": False} if op.method == "GET" else {}))
            for op in operations]


def build_document(operations: list[Operation], *, title: str, version: str,
                   description: str) -> dict[str, Any]:
    inputs = {m for op in operations for m in (op.body, op.query) if m is not None}
    outputs = ({op.response for op in operations if op.response is not None} | {Problem}
               | {m for op in operations for _, m in op.extra_responses.values() if m})
    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        *((m, "validation") for m in sorted(inputs, key=lambda m: m.__name__)),
        *((m, "serialization") for m in sorted(outputs, key=lambda m: m.__name__))]
    refs, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas = _without_null_defaults(defs.get("$defs", {}))

    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "feedSignature": {
                    "type": "apiKey", "in": "header", "name": "X-Portal-Signature",
                    "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.\" + the raw "
                                   "body, keyed with the feed's secret: "
                                   "feeds.purchases.secret or support.feed_secret>"},
            },
        },
    }


def _operation(op: Operation, refs: dict[Any, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(op.path)]
    if op.query is not None:
        query_schema = schemas[op.query.__name__]
        required = set(query_schema.get("required", []))
        for name, prop in query_schema.get("properties", {}).items():
            parameters.append({"name": name, "in": "query", "required": name in required,
                               "description": prop.get("description", ""),
                               "schema": {k: v for k, v in prop.items()
                                          if k not in ("description", "title")}})
    responses: dict[str, Any] = {}
    if op.response is not None:
        responses[str(op.status)] = {
            "description": op.summary,
            "content": {"application/json": {"schema": refs[(op.response, "serialization")]},
                        **{media: {"schema": {"type": "string", "format": "binary"}}
                           for media in op.media}}}
    else:
        responses[str(op.status)] = {"description": op.summary}
    problem_ref = refs[(Problem, "serialization")]
    for status in op.errors:
        responses[str(status)] = {
            "description": "Problem details (RFC 9457).",
            "content": {PROBLEM_JSON: {"schema": problem_ref}}}
    for status, (text, model) in op.extra_responses.items():
        responses[str(status)] = {"description": text} if model is None else {
            "description": text,
            "content": {"application/json": {"schema": refs[(model, "serialization")]}}}
    entry: dict[str, Any] = {
        "operationId": op.handler.__name__,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": parameters,
        "responses": responses,
        "security": [{op.scheme: []}] if op.scheme else [{"bearerAuth": []}] if op.auth else [],
    }
    if op.description:
        entry["description"] = op.description
    if op.upload is not None:
        entry["requestBody"] = {"required": True, "content": {"multipart/form-data": {
            "schema": {"type": "object", "required": [op.upload],
                       "properties": {op.upload: {"type": "string", "format": "binary"}}}}}}
    if op.body is not None:
        body_required = bool(schemas[op.body.__name__].get("required"))
        entry["requestBody"] = {"required": body_required, "content": {"application/json": {
            "schema": refs[(op.body, "validation")]}}}
    return entry


def _without_null_defaults(schema: Any) -> Any:
    """Drop `"default": null` where null is not an allowed value (fields that may only be
    left out), so the document never advertises a value the API refuses."""
    if isinstance(schema, dict):
        cleaned = {k: _without_null_defaults(v) for k, v in schema.items()}
        if cleaned.get("default", ...) is None and not _allows_null(cleaned):
            del cleaned["default"]
        return cleaned
    if isinstance(schema, list):
        return [_without_null_defaults(item) for item in schema]
    return schema


def _allows_null(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "null":
        return True
    return any(_allows_null(s) for s in schema.get("anyOf", []) if isinstance(s, dict))


def document_json(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


def documented_methods(document: dict[str, Any], path: str) -> list[str]:
    """The methods of the documented path that fits `path` best: the one matching it with
    the most literal segments, as a reader of the document would pick."""
    parts = path.rstrip("/").split("/")
    best, methods = -1, []
    for template, operations in document.get("paths", {}).items():
        pattern = template.split("/")
        if len(pattern) != len(parts):
            continue
        literal = 0
        for expected, actual in zip(pattern, parts, strict=True):
            if expected.startswith("{") and expected.endswith("}"):
                continue
            if expected != actual:
                break
            literal += 1
        else:
            if literal > best:
                best, methods = literal, sorted(m.upper() for m in operations)
    return methods
