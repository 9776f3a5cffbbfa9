"""The product catalogue through the API."""

from __future__ import annotations

from app.domain.roles import Role
from tests.world import World, unique


async def create(world: World, **fields: object) -> dict:  # type: ignore[type-arg]
    body = {"code": unique("prod"), "name": "Vault", "bucket": "releases", **fields}
    response = await world.client.post("/api/v1/products", json=body,
                                       headers=world.actors[Role.STAFF_ADMIN].headers)
    assert response.status == 201, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def test_staff_admin_adds_a_product_with_parameters(world: World) -> None:
    product = await create(world, description="Database firewall",
                           parameters={"editions": ["Standard", "Enterprise"],
                                       "platforms": {"linux": True}})
    assert product["prefix"] == product["code"] + "/"
    assert product["parameters"]["editions"] == ["Standard", "Enterprise"]
    assert product["active"] is True
    shown = await (await world.client.get(
        f"/api/v1/products/{product['id']}",
        headers=world.actors[Role.CUSTOMER_USER].headers)).json()
    assert shown == product


async def test_codes_are_unique_and_fields_are_validated(world: World) -> None:
    admin = world.actors[Role.STAFF_ADMIN].headers
    product = await create(world)
    again = await world.client.post("/api/v1/products", headers=admin, json={
        "code": product["code"], "name": "Again", "bucket": "releases"})
    assert again.status == 409
    assert (await again.json())["errors"][0]["field"] == "code"
    for body, field in [
        ({"code": "Bad Code", "name": "x", "bucket": "releases"}, "code"),
        ({"code": unique("p"), "name": "x", "bucket": "No_Bucket"}, "bucket"),
        ({"code": unique("p"), "name": "x", "bucket": "releases", "prefix": "../etc"}, "prefix"),
        ({"code": unique("p"), "name": "", "bucket": "releases"}, "name"),
        ({"code": unique("p"), "name": "x", "bucket": "releases", "parameters": [1]},
         "parameters"),
    ]:
        response = await world.client.post("/api/v1/products", headers=admin, json=body)
        assert response.status == 422, body
        assert field in [e["field"] for e in (await response.json())["errors"]], body


async def test_patch_changes_fields_but_never_the_code(world: World) -> None:
    admin = world.actors[Role.STAFF_ADMIN].headers
    product = await create(world)
    path = f"/api/v1/products/{product['id']}"
    changed = await (await world.client.patch(path, headers=admin, json={
        "name": "Vault 2", "prefix": "vault/builds", "parameters": {"editions": ["Pro"]}})).json()
    assert changed["name"] == "Vault 2" and changed["prefix"] == "vault/builds/"
    assert changed["parameters"] == {"editions": ["Pro"]} and changed["code"] == product["code"]
    refused = await world.client.patch(path, headers=admin, json={"code": "other"})
    assert refused.status == 422


async def test_withdrawn_products_are_hidden_from_customers(world: World) -> None:
    admin = world.actors[Role.STAFF_ADMIN].headers
    customer = world.actors[Role.CUSTOMER_USER].headers
    product = await create(world, active=False)
    path = f"/api/v1/products/{product['id']}"
    assert (await world.client.get(path, headers=customer)).status == 404
    assert (await world.client.get(path, headers=world.actors[Role.STAFF].headers)).status == 200

    async def listed(headers: dict[str, str]) -> set[str]:
        seen, cursor = set(), None
        while True:
            params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
            page = await (await world.client.get("/api/v1/products", params=params,
                                                 headers=headers)).json()
            seen |= {p["id"] for p in page["items"]}
            cursor = page["next_cursor"]
            if cursor is None:
                return seen

    assert product["id"] not in await listed(customer)
    assert product["id"] in await listed(admin)
    assert world.product.id in await listed(customer)
