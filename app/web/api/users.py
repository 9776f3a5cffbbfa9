from __future__ import annotations

from aiohttp import web

from app.services.users import UserChanges
from app.web.api.common import json_out, page_request, principal, services
from app.web.openapi import ApiRoutes
from app.web.schemas.common import ListQuery
from app.web.schemas.users import (
    PasswordLinkOut,
    UserCreate,
    UserCreated,
    UserOut,
    UserPage,
    UserPatch,
)

api = ApiRoutes("users")


@api.operation("GET", "/api/v1/cabinets/{id}/users", summary="Users of a cabinet",
               query=ListQuery, response=UserPage)
async def list_users(request: web.Request, query: ListQuery) -> web.Response:
    page = await services(request).users.list_in_cabinet(
        principal(request), request.match_info["id"], page_request(query))
    return json_out(UserPage(items=[UserOut.of(u) for u in page.items],
                             next_cursor=page.next_cursor))


@api.operation("POST", "/api/v1/cabinets/{id}/users", summary="Add a user to a cabinet",
               body=UserCreate, response=UserCreated, status=201, errors=(403, 409),
               description="Customer admins within their subtree, never above their own role; "
                           "staff admins anywhere. The answer holds the one-time link with "
                           "which the new user sets a password.")
async def create_user(request: web.Request, body: UserCreate) -> web.Response:
    invitation = await services(request).users.invite(
        principal(request), request.match_info["id"], body.email, body.name, body.role)
    return json_out(UserCreated(user=UserOut.of(invitation.user),
                                set_password_url=invitation.set_password_url,
                                set_password_expires_at=invitation.expires_at), status=201)


@api.operation("PATCH", "/api/v1/cabinets/{id}/users/{user_id}", summary="Change a user",
               body=UserPatch, response=UserOut, errors=(403,),
               description="Name, role and active flag. Nobody changes their own role or "
                           "deactivates themselves; deactivation ends the user's logins.")
async def update_user(request: web.Request, body: UserPatch) -> web.Response:
    changes = UserChanges(name=body.name, role=body.role,
                          active=body.active)
    user = await services(request).users.update(
        principal(request), request.match_info["id"], request.match_info["user_id"], changes)
    return json_out(UserOut.of(user))


@api.operation("DELETE", "/api/v1/cabinets/{id}/users/{user_id}", summary="Remove a user",
               status=204, errors=(403,))
async def delete_user(request: web.Request) -> web.Response:
    await services(request).users.delete(
        principal(request), request.match_info["id"], request.match_info["user_id"])
    return web.Response(status=204)


@api.operation("POST", "/api/v1/cabinets/{id}/users/{user_id}/password-link",
               summary="E-mail a user a new set-password link", response=PasswordLinkOut,
               status=202, errors=(403, 409),
               description="A reset link (short-lived), or to a user who never set a "
                           "password the invitation again. Whoever may change the user may "
                           "send it; not to a deactivated user (409).")
async def send_password_link(request: web.Request) -> web.Response:
    link = await services(request).users.send_password_link(
        principal(request), request.match_info["id"], request.match_info["user_id"])
    return json_out(PasswordLinkOut(email=link.email, expires_at=link.expires_at,
                                    new_account=link.new_account), status=202)
