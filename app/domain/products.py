"""Products: what the vendor sells, and where its releases lie in the object store."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.domain.errors import Invalid

CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
# S3's rule for bucket names, without the rarely used dotted forms' exceptions.
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
MAX_DESCRIPTION_LENGTH = 10_000
MAX_PREFIX_LENGTH = 512


@dataclass
class Product:
    id: str
    code: str
    name: str
    description: str
    bucket: str
    # Key prefix of the product's releases in the bucket, "" or ending with "/".
    prefix: str
    active: bool
    created_at: datetime
    updated_at: datetime
    # Free JSON: editions, platforms, anything the vendor wants to show or template on.
    parameters: dict[str, Any] = field(default_factory=dict)


def check_code(code: str) -> str:
    if not re.fullmatch(CODE_PATTERN, code):
        raise Invalid("A product code is 2-63 lower-case letters, digits and hyphens, "
                      "starting with a letter or digit.", field="code")
    return code


def check_bucket(bucket: str) -> str:
    if not re.fullmatch(BUCKET_PATTERN, bucket) or ".." in bucket:
        raise Invalid("A bucket name is 3-63 lower-case letters, digits, dots and hyphens.",
                      field="bucket")
    return bucket


def check_prefix(prefix: str) -> str:
    """A relative key prefix: no leading slash, no "." or ".." parts, ending with "/"."""
    cleaned = prefix.strip().strip("/")
    parts = cleaned.split("/") if cleaned else []
    if any(part in ("", ".", "..") for part in parts) or len(cleaned) >= MAX_PREFIX_LENGTH:
        raise Invalid("The prefix must be a relative path of non-empty parts.", field="prefix")
    return cleaned + "/" if cleaned else ""


def parse_parameters(text: str) -> dict[str, Any]:
    """A product's parameters as a form holds them: a JSON object (empty text: none)."""
    try:
        parameters = json.loads(text.strip() or "{}")
    except ValueError:
        parameters = None
    if not isinstance(parameters, dict):
        raise Invalid("Parameters must be a JSON object, such as {\"editions\": [\"Pro\"]}.",
                      field="parameters")
    return parameters


def check_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise Invalid(f"The description is longer than {MAX_DESCRIPTION_LENGTH} characters.",
                      field="description")
    return description.strip()
