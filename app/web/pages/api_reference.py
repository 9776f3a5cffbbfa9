"""The API reference page, read from the same OpenAPI document the routes are declared with:
operations grouped by capability, each with its parameters, request and response fields
(their real types: "string or null", "array of LicenseOut"), and an example of each body."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any]
# A readable sample per string format, where the format says more than its type.
_SAMPLES = {"date-time": "2026-12-06T10:00:00Z", "date": "2026-12-06", "email": "it@acme.example",
            "uri": "https://portal.example/…", "uuid": "01930c6e-8f2a-7c1d-9b6e-2f1a3c4d5e6f"}


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    description: str


@dataclass(frozen=True)
class Body:
    name: str
    fields: list[Field]
    example: str


@dataclass
class Operation:
    id: str
    method: str
    path: str
    summary: str
    description: str
    public: bool
    parameters: list[Field] = field(default_factory=list)
    request: Body | None = None
    upload: list[str] = field(default_factory=list)
    response: Body | None = None
    success: str = ""
    statuses: list[tuple[str, str]] = field(default_factory=list)


def reference(document: Schema) -> dict[str, list[Operation]]:
    """Capability (the operation's tag) -> its operations, in the document's order."""
    schemas = document.get("components", {}).get("schemas", {})
    groups: dict[str, list[Operation]] = {}
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            operation = Operation(
                id=spec["operationId"], method=method, path=path, summary=spec.get("summary", ""),
                description=spec.get("description", ""), public=not spec.get("security"),
                parameters=[Field(p["name"], f"{p['in']} · {type_of(p.get('schema', {}), schemas)}",
                                  bool(p.get("required")), p.get("description", ""))
                            for p in spec.get("parameters", [])],
                statuses=[(status, r.get("description", ""))
                          for status, r in spec.get("responses", {}).items()])
            content = spec.get("requestBody", {}).get("content", {})
            if "multipart/form-data" in content:
                operation.upload = list(content["multipart/form-data"]["schema"]["properties"])
            elif "application/json" in content:
                operation.request = _body(content["application/json"]["schema"], schemas)
            for status, answer in spec.get("responses", {}).items():
                if status.startswith("2"):
                    operation.success = status
                    json_answer = answer.get("content", {}).get("application/json")
                    if json_answer and "schema" in json_answer:
                        operation.response = _body(json_answer["schema"], schemas)
                    break
            groups.setdefault((spec.get("tags") or ["other"])[0], []).append(operation)
    return groups


def _body(schema: Schema, schemas: dict[str, Schema]) -> Body:
    name = schema["$ref"].rsplit("/", 1)[-1] if "$ref" in schema else type_of(schema, schemas)
    resolved = _resolve(schema, schemas)
    required = set(resolved.get("required", []))
    fields = [Field(key, type_of(prop, schemas), key in required,
                    prop.get("description", ""))
              for key, prop in resolved.get("properties", {}).items()]
    return Body(name, fields, json.dumps(example_of(schema, schemas), indent=2,
                                         ensure_ascii=False))


def _resolve(schema: Schema, schemas: dict[str, Schema]) -> Schema:
    while "$ref" in schema:
        schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema


def type_of(schema: Schema, schemas: dict[str, Schema]) -> str:
    """A field's type as a reader says it: "string (date-time)", "LicenseOut or null"."""
    if "$ref" in schema:
        target = _resolve(schema, schemas)
        return type_of(target, schemas) if "enum" in target else \
            str(schema["$ref"].rsplit("/", 1)[-1])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(dict.fromkeys(type_of(s, schemas) for s in schema[key]))
    if "enum" in schema:
        return "one of " + ", ".join(f"“{v}”" for v in schema["enum"])
    if "const" in schema:
        return f"“{schema['const']}”"
    kind = schema.get("type")
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}), schemas)}"
    if kind == "null":
        return "null"
    if kind == "object" and "additionalProperties" in schema and not schema.get("properties"):
        return "object (free form)"
    if kind:
        return f"{kind} ({schema['format']})" if "format" in schema else str(kind)
    return "any"


def example_of(schema: Schema, schemas: dict[str, Schema], depth: int = 0) -> Any:
    """A plausible value for the schema: its example or default where it has one."""
    if schema.get("examples"):
        return schema["examples"][0]
    if "example" in schema:
        return schema["example"]
    if "$ref" in schema:
        return example_of(_resolve(schema, schemas), schemas, depth) if depth < 4 else {}
    for key in ("anyOf", "oneOf"):
        if key in schema:
            chosen = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return example_of(chosen[0], schemas, depth)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object":
        return {key: example_of(prop, schemas, depth + 1)
                for key, prop in schema.get("properties", {}).items()}
    if kind == "array":
        return [example_of(schema.get("items", {}), schemas, depth + 1)]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _SAMPLES.get(schema.get("format", ""), "string")
