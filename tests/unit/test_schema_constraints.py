"""Every constraint the server enforces on a body or a query appears in the OpenAPI
document: a rule pydantic checks but the document leaves out makes clients send what the
server refuses (seen: ProductPatch.bucket's pattern, lost where a field may also be left
out). Business rules no schema can state are the use cases' (422), listed where they are."""

from __future__ import annotations

from typing import Any

import annotated_types
import pytest
from pydantic import BaseModel

from app.web.app import API_MODULES

KEYWORDS = {annotated_types.MinLen: "minLength", annotated_types.MaxLen: "maxLength",
            annotated_types.Ge: "minimum", annotated_types.Le: "maximum",
            annotated_types.Gt: "exclusiveMinimum", annotated_types.Lt: "exclusiveMaximum"}


SAME = {"minItems": "minLength", "maxItems": "maxLength", "minProperties": "minLength",
        "maxProperties": "maxLength"}


def models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for module in API_MODULES:
        for op in module.api.operations:
            for model in (op.body, op.query):
                if model is not None:
                    found[model.__name__] = model
    return sorted(found.values(), key=lambda m: m.__name__)


def _keywords(schema: dict[str, Any]) -> set[str]:
    """The constraint keywords a property states, on itself or on a branch of it."""
    found = set(schema)
    for branch in schema.get("anyOf", []) + schema.get("allOf", []):
        found |= _keywords(branch)
    if "items" in schema:
        found |= {f"items.{k}" for k in _keywords(schema["items"])}
    return found


def enforced(field: Any) -> set[str]:
    """The JSON Schema keywords of the constraints pydantic checks on a field."""
    wanted = set()
    for rule in field.metadata:
        for kind, keyword in KEYWORDS.items():
            if isinstance(rule, kind):
                wanted.add(keyword)
        if getattr(rule, "pattern", None):
            wanted.add("pattern")
        if getattr(rule, "min_length", None) is not None:
            wanted.add("minLength")
        if getattr(rule, "max_length", None) is not None:
            wanted.add("maxLength")
    return wanted


@pytest.mark.parametrize("model", models(), ids=lambda m: m.__name__)
def test_every_enforced_constraint_is_in_the_document(model: type[BaseModel]) -> None:
    properties = model.model_json_schema(by_alias=True).get("properties", {})
    missing = {}
    for name, field in model.model_fields.items():
        stated = _keywords(properties.get(field.alias or name, {}))
        # A list's length is its number of items; a mapping's, of its keys.
        stated |= {SAME[k] for k in stated if k in SAME}
        if lacking := enforced(field) - stated:
            missing[name] = sorted(lacking)
    assert missing == {}, f"{model.__name__}: enforced but not in the document: {missing}"
