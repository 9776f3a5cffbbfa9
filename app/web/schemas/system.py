"""Health, keys, problem details and the OpenAPI document itself."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from app.web.schemas.common import Out


class Health(Out):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


class Jwk(Out):
    model_config = ConfigDict(extra="allow", frozen=True)
    kty: str
    kid: str
    use: str
    alg: str


class Jwks(Out):
    keys: list[Jwk]


class FieldError(Out):
    field: str
    message: str


class Problem(Out):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str
    errors: list[FieldError] | None = None


class OpenApiDocument(Out):
    model_config = ConfigDict(extra="allow", frozen=True)
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
