from __future__ import annotations

from aiohttp import web

from app.services.catalog import ProductChanges, ProductDraft
from app.web.api.common import json_out, page_request, principal, services
from app.web.openapi import ApiRoutes
from app.web.schemas.common import ListQuery
from app.web.schemas.products import ProductCreate, ProductOut, ProductPage, ProductPatch

api = ApiRoutes("products")


@api.operation("GET", "/api/v1/products", summary="The product catalogue", query=ListQuery,
               response=ProductPage,
               description="Customers see the products on sale; staff also withdrawn ones.")
async def list_products(request: web.Request, query: ListQuery) -> web.Response:
    page = await services(request).catalog.list_visible(principal(request), page_request(query))
    return json_out(ProductPage(items=[ProductOut.of(p) for p in page.items],
                                next_cursor=page.next_cursor))


@api.operation("POST", "/api/v1/products", summary="Add a product", body=ProductCreate,
               response=ProductOut, status=201, errors=(403, 409),
               description="Staff administrators only.")
async def create_product(request: web.Request, body: ProductCreate) -> web.Response:
    product = await services(request).catalog.create(principal(request), ProductDraft(
        code=body.code, name=body.name, description=body.description,
        parameters=body.parameters, bucket=body.bucket, prefix=body.prefix, active=body.active))
    return json_out(ProductOut.of(product), status=201)


@api.operation("GET", "/api/v1/products/{id}", summary="One product", response=ProductOut)
async def get_product(request: web.Request) -> web.Response:
    product = await services(request).catalog.get(principal(request), request.match_info["id"])
    return json_out(ProductOut.of(product))


@api.operation("PATCH", "/api/v1/products/{id}", summary="Change a product", body=ProductPatch,
               response=ProductOut, errors=(403,),
               description="Staff administrators only. The code cannot change.")
async def update_product(request: web.Request, body: ProductPatch) -> web.Response:
    product = await services(request).catalog.update(
        principal(request), request.match_info["id"], ProductChanges(
            name=body.name, description=body.description, parameters=body.parameters,
            bucket=body.bucket, prefix=body.prefix, active=body.active))
    return json_out(ProductOut.of(product))
