from __future__ import annotations

from aiohttp import web

from app.domain.sessions import TokenPair
from app.domain.users import check_email
from app.web.api.common import after_answer, client_address, json_out, principal, services
from app.web.keys import PRINCIPAL
from app.web.openapi import ApiRoutes
from app.web.schemas.auth import (
    LoginIn,
    MeOut,
    MyCabinet,
    PasswordForgotIn,
    PasswordForgotOut,
    PasswordSetIn,
    RefreshIn,
    RevokeIn,
    TokenOut,
)
from app.web.schemas.cabinets import CabinetOut, CabinetRef
from app.web.schemas.users import UserOut

api = ApiRoutes("auth")


def _tokens(pair: TokenPair) -> web.Response:
    return json_out(TokenOut(access_token=pair.access_token, refresh_token=pair.refresh_token,
                             expires_in=pair.expires_in))


@api.operation("POST", "/api/v1/jwt", summary="Sign in: an access and a refresh token",
               auth=False, body=LoginIn, response=TokenOut, errors=(401,),
               description="Wrong e-mail and wrong password answer alike (401). Repeated "
                           "failures for an account or an address answer 429 with Retry-After.")
async def create_token(request: web.Request, body: LoginIn) -> web.Response:
    pair = await services(request).auth.login(body.email, body.password, client_address(request))
    return _tokens(pair)


@api.operation("POST", "/api/v1/jwt/refresh", summary="Rotate a refresh token", auth=False,
               body=RefreshIn, response=TokenOut, errors=(401,),
               description="The presented refresh token is spent. Presenting a spent token "
                           "again revokes every token of its login.")
async def refresh_token(request: web.Request, body: RefreshIn) -> web.Response:
    pair = await services(request).auth.refresh(body.refresh_token, client_address(request))
    return _tokens(pair)


@api.operation("POST", "/api/v1/jwt/revoke", summary="Sign out", auth=False, body=RevokeIn,
               status=204, errors=(401,),
               description="Ends the login of the given refresh token, or of the bearer token.")
async def revoke_token(request: web.Request, body: RevokeIn) -> web.Response:
    await services(request).auth.revoke(request.get(PRINCIPAL), body.refresh_token)
    return web.Response(status=204)


@api.operation("GET", "/api/v1/me", summary="The caller, their cabinet and their rights",
               response=MeOut)
async def get_me(request: web.Request) -> web.Response:
    me = await services(request).auth.me(principal(request))
    cabinet = MyCabinet(**CabinetOut.of(me.cabinet).model_dump(),
                        ancestors=[CabinetRef.of(c) for c in me.ancestors],
                        children=[CabinetRef.of(c) for c in me.children])
    return json_out(MeOut(user=UserOut.of(me.user), cabinet=cabinet, role=me.user.role,
                          permissions=me.permissions))


@api.operation("POST", "/api/v1/password/set", summary="Set a password with a one-time link",
               auth=False, body=PasswordSetIn, status=204,
               description="Spends the token of a set-password link; ends every login of "
                           "that user.")
async def set_password(request: web.Request, body: PasswordSetIn) -> web.Response:
    await services(request).users.set_password(body.token, body.password,
                                               client_address(request))
    return web.Response(status=204)


# Said for every address alike.
LINK_ON_ITS_WAY = ("If an active account uses this address, a link to choose a new password "
                   "is on its way to it. The link works once, for a short time.")


@api.operation("POST", "/api/v1/password/forgot", summary="E-mail a link to choose a new "
               "password", auth=False, body=PasswordForgotIn, response=PasswordForgotOut,
               status=202, errors=(429,),
               description="The same answer whether or not an account uses the address. "
                           "The link is short-lived (auth.password_reset_ttl) and works "
                           "once; setting the password ends every other login. An account "
                           "gets at most auth.password_links_per_hour such links an hour.")
async def forgot_password(request: web.Request, body: PasswordForgotIn) -> web.Response:
    check_email(body.email)  # a malformed address is refused now; it names no account
    # The link is made after the answer: a known address must not answer more slowly.
    after_answer(request, services(request).users.request_password_link(
        body.email, client_address(request)), "a password link")
    return json_out(PasswordForgotOut(detail=LINK_ON_ITS_WAY), status=202)
