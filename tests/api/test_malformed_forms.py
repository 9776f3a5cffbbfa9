"""Portal forms whose body cannot be read: a 400 (or 415) page, never a 500, whatever the
path (even one that does not exist), signed in or not."""

from __future__ import annotations

import pytest

from app.domain.roles import Role
from tests.world import World

BROKEN = {
    "multipart without a boundary": ("multipart/form-data", b"--x\r\n\r\nbody"),
    "invalid UTF-8 in a form": ("application/x-www-form-urlencoded", b"email=\xff\xfe%ff"),
    "an unknown charset": ("application/x-www-form-urlencoded; charset=klingon", b"a=b"),
    "a broken multipart part": ("multipart/form-data; boundary=b",
                                b"--b\r\nContent-Disposition: form-data; name=\"a\x07\"\r\n\r\nx"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
async def test_a_form_body_that_cannot_be_read_is_a_4xx_page(world: World, name: str) -> None:
    content_type, body = BROKEN[name]
    for path in ("/login", "/nowhere/at/all", f"/cabinets/{world.own.id}/users"):
        for headers in ({}, world.actors[Role.CUSTOMER_ADMIN].headers):
            response = await world.client.post(path, data=body, headers={
                **headers, "Content-Type": content_type}, allow_redirects=False)
            text = await response.text()
            assert response.status in (400, 415), (name, path, response.status, text[:200])
            assert "Traceback" not in text and response.content_type == "text/html"
