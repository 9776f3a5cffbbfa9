"""Webhooks that other systems call: authenticated by signature, not by a user."""

from __future__ import annotations

from aiohttp import web

from app.web.api.common import services
from app.web.openapi import ApiRoutes
from app.web.schemas.feeds import PurchaseEventIn, PurchaseOutcomeOut

api = ApiRoutes("feeds")
SIGNATURE_HEADER = "X-Portal-Signature"


def _signed(request: web.Request, raw: bytes) -> None:
    services(request).purchases.verify_signature(request.headers.get(SIGNATURE_HEADER), raw)


@api.operation(
    "POST", "/api/v1/feed/purchases", summary="A purchase event from the billing system",
    auth=False, scheme="feedSignature", verify_raw=_signed, body=PurchaseEventIn,
    response=PurchaseOutcomeOut, errors=(409,),
    description="`purchase.completed` creates the customer's cabinet (by billing id, under its "
                "parent if given) and its licenses and certificates; `purchase.renewed` moves "
                "the named items' end date; `purchase.refunded` revokes them. The whole event "
                "is one transaction. The same `event_id` again answers the first outcome and "
                "changes nothing (header `X-Portal-Replayed: true`).")
async def receive_purchase(request: web.Request, body: PurchaseEventIn) -> web.Response:
    outcome, replayed = await services(request).purchases.apply(body.to_domain())
    return web.Response(
        text=PurchaseOutcomeOut.model_validate(outcome).model_dump_json(),
        content_type="application/json",
        headers={"X-Portal-Replayed": "true"} if replayed else None)
