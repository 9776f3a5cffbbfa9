"""Signed purchase events, as the billing system sends them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

SECRET = "test-feed-secret"  # tests/conftest.py gives every test portal this secret


def signature(body: bytes, secret: str = SECRET, at: float | None = None) -> str:
    stamp = str(int(time.time() if at is None else at))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    return f"t={stamp},v1={digest.hexdigest()}"


def purchase(product_code: str, customer: str | None = None, *, parent: str | None = None,
             type_: str = "purchase.completed", items: list[dict[str, Any]] | None = None,
             event_id: str | None = None) -> dict[str, Any]:
    """A purchase event; by default a new customer buying a license and a certificate."""
    order = uuid.uuid4().hex[:8]
    return {
        "event_id": event_id or f"evt_{order}", "type": type_,
        "occurred_at": "2026-11-26T10:00:00Z",
        "customer": {"external_id": customer or f"CRM-{order}", "name": "Acme LLC",
                     "parent_external_id": parent, "contact_email": "it@acme.example"},
        "items": items if items is not None else [
            {"external_id": f"ORD-{order}-1", "kind": "license", "product_code": product_code,
             "edition": "Enterprise", "seats": 50, "valid_from": "2026-11-26",
             "valid_to": "2027-11-25"},
            {"external_id": f"ORD-{order}-2", "kind": "certificate", "product_code": product_code,
             "level": "premium", "valid_from": "2026-11-26", "valid_to": "2027-11-25",
             "license_external_id": f"ORD-{order}-1"}],
    }


def signed(event: dict[str, Any], **sign: Any) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    return body, {"Content-Type": "application/json",
                  "X-Portal-Signature": signature(body, **sign)}
