"""Sign-in, token rotation, reuse detection, revocation, token checks and throttling."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time

from jwcrypto import jwk, jwt

from adapters.jwcrypto import JwcryptoTokenCodec
from app.domain.access import Scope
from app.domain.audit import AuditFilter
from app.domain.cabinets import CabinetKind
from app.domain.paging import PageRequest
from app.domain.roles import Role
from app.domain.users import SYSTEM
from app.services.users import UserChanges
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.world import PASSWORD, Client, ClientFactory, SettingsFor, World, email, login


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def me_status(client: Client, token: str) -> int:
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    await response.read()
    return response.status


async def test_login_returns_a_bearer_pair_that_opens_me(world: World) -> None:
    actor = world.actors[Role.CUSTOMER_ADMIN]
    tokens = await login(world.client, actor.email.upper())  # e-mail is case-insensitive
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900
    response = await world.client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    me = await response.json()
    assert me["user"]["email"] == actor.email
    assert me["role"] == "customer_admin"
    assert me["cabinet"]["id"] == world.own.id
    assert [a["id"] for a in me["cabinet"]["ancestors"]] == [world.parent.id]
    assert [c["id"] for c in me["cabinet"]["children"]] == [world.child.id]
    assert "users:manage" in me["permissions"]
    assert "products:manage" not in me["permissions"]


async def test_wrong_email_and_wrong_password_answer_alike(world: World) -> None:
    actor = world.actors[Role.CUSTOMER_USER]
    bodies = []
    for credentials in ({"email": actor.email, "password": "not the password"},
                        {"email": email("nobody"), "password": PASSWORD}):
        response = await world.client.post("/api/v1/jwt", json=credentials)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        body = await response.json()
        bodies.append({k: v for k, v in body.items() if k != "request_id"})
    assert bodies[0] == bodies[1]
    assert bodies[0]["type"] == "/problems/unauthenticated"


async def test_deactivated_user_cannot_sign_in_and_says_nothing_more(world: World) -> None:
    actor = world.actors[Role.CUSTOMER_USER]
    admin = world.actors[Role.CUSTOMER_ADMIN]
    response = await world.client.patch(f"/api/v1/cabinets/{world.own.id}/users/{actor.user_id}",
                                        json={"active": False}, headers=admin.headers)
    assert response.status == 200
    response = await world.client.post("/api/v1/jwt",
                                       json={"email": actor.email, "password": PASSWORD})
    assert response.status == 401
    assert (await response.json())["detail"] == "The e-mail address or the password is wrong."


async def test_refresh_rotates_and_the_old_token_stops_working(world: World) -> None:
    actor = world.actors[Role.CUSTOMER_USER]
    first = await world.client.post("/api/v1/jwt/refresh",
                                    json={"refresh_token": actor.refresh_token})
    assert first.status == 200
    rotated = await first.json()
    assert rotated["refresh_token"] != actor.refresh_token
    assert await me_status(world.client, rotated["access_token"]) == 200

    again = await world.client.post("/api/v1/jwt/refresh",
                                    json={"refresh_token": actor.refresh_token})
    assert again.status == 401


async def test_reusing_a_spent_refresh_token_revokes_the_whole_login(world: World) -> None:
    actor = world.actors[Role.CUSTOMER_USER]
    rotated = await (await world.client.post(
        "/api/v1/jwt/refresh", json={"refresh_token": actor.refresh_token})).json()
    reuse = await world.client.post("/api/v1/jwt/refresh",
                                    json={"refresh_token": actor.refresh_token})
    assert reuse.status == 401
    # Everything of that login is dead now: the newest refresh and every access token.
    newest = await world.client.post("/api/v1/jwt/refresh",
                                     json={"refresh_token": rotated["refresh_token"]})
    assert newest.status == 401
    assert await me_status(world.client, rotated["access_token"]) == 401
    assert await me_status(world.client, actor.access_token) == 401
    # Another login of the same user is untouched.
    other = await login(world.client, actor.email)
    assert await me_status(world.client, other["access_token"]) == 200


async def test_revoke_by_bearer_and_by_refresh_token(world: World) -> None:
    actor = world.actors[Role.CUSTOMER_USER]
    response = await world.client.post("/api/v1/jwt/revoke", json={}, headers=actor.headers)
    assert response.status == 204
    assert await me_status(world.client, actor.access_token) == 401
    refresh = await world.client.post("/api/v1/jwt/refresh",
                                      json={"refresh_token": actor.refresh_token})
    assert refresh.status == 401

    second = await login(world.client, actor.email)
    response = await world.client.post("/api/v1/jwt/revoke",
                                       json={"refresh_token": second["refresh_token"]})
    assert response.status == 204
    assert await me_status(world.client, second["access_token"]) == 401


async def test_deactivation_ends_refresh_at_once(world: World) -> None:
    actor = world.actors[Role.CUSTOMER_USER]
    await world.client.app[SERVICES].users.update(SYSTEM, world.own.id, actor.user_id,
                                                  UserChanges(active=False))
    response = await world.client.post("/api/v1/jwt/refresh",
                                       json={"refresh_token": actor.refresh_token})
    assert response.status == 401
    assert await me_status(world.client, actor.access_token) == 401


async def test_refresh_token_is_not_an_access_token_and_back(world: World) -> None:
    actor = world.actors[Role.CUSTOMER_USER]
    assert await me_status(world.client, actor.refresh_token) == 401
    response = await world.client.post("/api/v1/jwt/refresh",
                                       json={"refresh_token": actor.access_token})
    assert response.status == 401


def _part_of(token: str, index: int) -> dict[str, object]:
    part = token.split(".")[index]
    found: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return found


def _claims_of(token: str) -> dict[str, object]:
    return _part_of(token, 1)


def _header_of(token: str) -> dict[str, object]:
    return _part_of(token, 0)


async def test_forged_and_broken_tokens_are_refused(world: World) -> None:
    actor = world.actors[Role.STAFF_ADMIN]
    token = actor.access_token
    claims = _claims_of(token)
    header = _header_of(token)
    jwks = await (await world.client.get("/.well-known/jwks.json")).json()
    public = jwk.JWK(**jwks["keys"][0])

    unsigned = f"{b64({'alg': 'none', 'kid': header['kid']})}.{b64(claims)}."
    hs256 = jwt.JWT(header={"alg": "HS256", "kid": header["kid"]}, claims=claims)
    hs256.make_signed_token(jwk.JWK(kty="oct", k=base64.urlsafe_b64encode(
        public.export_public().encode()).rstrip(b"=").decode()))
    head, body, signature = token.split(".")
    tampered_claims = b64({**claims, "sub": world.actors[Role.CUSTOMER_USER].user_id})
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]

    codec = world.client.app[SERVICES].auth._tokens  # the app's own signer, for claim tests
    assert isinstance(codec, JwcryptoTokenCodec)
    now = int(time.time())
    base = {k: v for k, v in claims.items() if k not in ("iss", "aud")}
    expired = codec.encode({**base, "iat": now - 7200, "exp": now - 3600})
    other_key = jwk.JWK.generate(kty="OKP", crv="Ed25519")
    foreign = jwt.JWT(header={"alg": "EdDSA", "kid": header["kid"]}, claims=claims)
    foreign.make_signed_token(other_key)
    wrong_audience = jwt.JWT(header={"alg": "EdDSA", "kid": header["kid"]},
                             claims={**claims, "aud": "someone-else"})
    wrong_audience.make_signed_token(codec._key)
    wrong_issuer = jwt.JWT(header={"alg": "EdDSA", "kid": header["kid"]},
                           claims={**claims, "iss": "evil"})
    wrong_issuer.make_signed_token(codec._key)

    cases = {
        "alg none": unsigned,
        "HS256 keyed with the public key": hs256.serialize(),
        "tampered claims": f"{head}.{tampered_claims}.{signature}",
        "flipped signature": f"{head}.{body}.{flipped}",
        "expired": expired,
        "signed by another key": foreign.serialize(),
        "wrong audience": wrong_audience.serialize(),
        "wrong issuer": wrong_issuer.serialize(),
        "garbage": "not-a-token",
        # The leeway for clocks apart is 30 s, no more.
        "expired 31 s ago": codec.encode({**base, "iat": now - 900, "exp": now - 31}),
        "not valid for two more minutes": codec.encode({**base, "nbf": now + 120}),
        "a not-before that is no number": codec.encode({**base, "nbf": "soon"}),
        # The verifier reads the compact form itself: its edges, each refused.
        "a fourth part": f"{token}.e30",
        "not base64url in the signature": f"{head}.{body}.{signature[:-4]}*+/=",
        "another key's id": f"{b64({**header, 'kid': 'other'})}.{body}.{signature}",
        "a critical header": f"{b64({**header, 'crit': ['exp']})}.{body}.{signature}",
        "a boolean expiry": codec.encode({**base, "exp": True}),
        "no subject": codec.encode({k: v for k, v in base.items() if k != "sub"}),
    }
    within = codec.encode({**base, "iat": now - 900, "exp": now - 20})
    assert await me_status(world.client, within) == 200  # inside the leeway
    started = codec.encode({**base, "nbf": now - 5})
    assert await me_status(world.client, started) == 200
    assert await me_status(world.client, token) == 200
    refused = {name: await me_status(world.client, bad) for name, bad in cases.items()}
    assert refused == dict.fromkeys(cases, 401)


async def test_bearer_scheme_is_required(world: World) -> None:
    actor = world.actors[Role.CUSTOMER_USER]
    response = await world.client.get("/api/v1/me",
                                      headers={"Authorization": f"Token {actor.access_token}"})
    assert response.status == 401
    body = await response.json()
    assert body["type"] == "/problems/unauthenticated"


async def test_jwks_publishes_the_verifying_key_only(world: World) -> None:
    jwks = await (await world.client.get("/.well-known/jwks.json")).json()
    [key] = jwks["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA"
    assert "d" not in key
    token_kid = _header_of(world.actors[Role.STAFF].access_token)["kid"]
    assert key["kid"] == token_kid
    # The published key really verifies the portal's tokens.
    verified = jwt.JWT(jwt=world.actors[Role.STAFF].access_token, key=jwk.JWK(**key),
                       algs=["EdDSA"])
    assert json.loads(verified.claims)["sub"] == world.actors[Role.STAFF].user_id


def random_address() -> str:
    return f"198.51.100.{secrets.randbelow(250) + 1}-{secrets.token_hex(4)}"


async def _throttled_client(aiohttp_client: ClientFactory, settings_for: SettingsFor,
                            backend: str, **env: str) -> tuple[Client, str]:
    """An app with low limits behind one proxy, and a client address of this test's own
    (the PostgreSQL database, and its counters, are shared by the whole session)."""
    settings = settings_for(backend, **{
        "PORTAL_AUTH__THROTTLE__MAX_FAILURES_PER_ACCOUNT": "3",
        "PORTAL_AUTH__THROTTLE__MAX_FAILURES_PER_ADDRESS": "6",
        "PORTAL_WEB__PROXY_HOPS": "1", **env})
    client = await aiohttp_client(create_app(settings),
                                  headers={"X-Forwarded-For": random_address()})
    services = client.app[SERVICES]
    cabinet = await services.cabinets.create(SYSTEM, "Throttled Ltd", CabinetKind.CUSTOMER, None)
    victim = email("victim")
    await services.users.create_with_password(SYSTEM, cabinet.id, victim, "V",
                                              Role.CUSTOMER_USER, PASSWORD)
    return client, victim


async def test_repeated_failures_lock_the_account(
        aiohttp_client: ClientFactory, settings_for: SettingsFor, backend: str) -> None:
    client, victim = await _throttled_client(aiohttp_client, settings_for, backend)
    for _ in range(3):
        response = await client.post("/api/v1/jwt", json={"email": victim, "password": "nope"})
        assert response.status == 401
    # Locked for a while, even with the right password.
    response = await client.post("/api/v1/jwt", json={"email": victim, "password": PASSWORD})
    assert response.status == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 900
    assert (await response.json())["type"] == "/problems/too-many-requests"


async def test_failures_from_one_address_are_throttled_across_accounts(
        aiohttp_client: ClientFactory, settings_for: SettingsFor, backend: str) -> None:
    client, _ = await _throttled_client(aiohttp_client, settings_for, backend)
    statuses = []
    for _ in range(7):
        response = await client.post("/api/v1/jwt",
                                     json={"email": email("spray"), "password": "nope"})
        statuses.append(response.status)
    assert statuses == [401] * 6 + [429]


async def test_a_burst_of_concurrent_guesses_cannot_pass_the_limit(
        aiohttp_client: ClientFactory, settings_for: SettingsFor, backend: str) -> None:
    client, victim = await _throttled_client(aiohttp_client, settings_for, backend,
                                             PORTAL_AUTH__THROTTLE__MAX_FAILURES_PER_ADDRESS="1000")

    async def guess(n: int) -> int:
        response = await client.post("/api/v1/jwt",
                                     json={"email": victim, "password": f"guess {n}"})
        await response.read()
        return response.status

    statuses = await asyncio.gather(*(guess(n) for n in range(30)))
    assert sorted(statuses) == [401] * 3 + [429] * 27


async def test_the_address_is_the_one_the_proxy_saw_not_what_the_client_wrote(
        aiohttp_client: ClientFactory, settings_for: SettingsFor, backend: str) -> None:
    client, _ = await _throttled_client(aiohttp_client, settings_for, backend)
    real = random_address()
    statuses = []
    for n in range(7):
        # The client forges a new first entry each time; the proxy appends the real one.
        response = await client.post(
            "/api/v1/jwt", json={"email": email("spray"), "password": "nope"},
            headers={"X-Forwarded-For": f"10.0.0.{n}, {real}"})
        statuses.append(response.status)
    assert statuses == [401] * 6 + [429]
    storage = client.app[SERVICES].storage
    # The session's database is shared: every failed sign-in of it, page by page.
    addresses: set[str | None] = set()
    after: str | None = None
    while True:
        async with storage.unit_of_work() as uow:
            entries = await uow.audit.list_visible(Scope.everything(), PageRequest(200, after),
                                                   AuditFilter(action="login.failed"))
        addresses |= {e.address for e in entries[:200]}
        if len(entries) <= 200:
            break
        after = entries[199].id
    assert real in addresses


async def test_a_successful_sign_in_clears_the_accounts_failures(
        aiohttp_client: ClientFactory, settings_for: SettingsFor) -> None:
    client, victim = await _throttled_client(aiohttp_client, settings_for, "sqlite")
    for _ in range(2):
        await client.post("/api/v1/jwt", json={"email": victim, "password": "nope"})
    await login(client, victim)
    for _ in range(3):
        response = await client.post("/api/v1/jwt", json={"email": victim, "password": "nope"})
        assert response.status == 401


async def test_successful_login_is_audited_and_failures_too(world: World) -> None:
    actor = world.actors[Role.CUSTOMER_USER]
    await world.client.post("/api/v1/jwt", json={"email": actor.email, "password": "bad"})
    storage = world.client.app[SERVICES].storage
    async with storage.unit_of_work() as uow:
        entries = await uow.audit.list_visible(Scope.everything(), PageRequest(200),
                                       AuditFilter(object_id=actor.user_id))
    actions = [e.action for e in entries]
    assert actions[:2] == ["user.created", "login"]
    assert actions[-1] == "login.failed"
    assert entries[-1].address == "127.0.0.1"
