"""Users of cabinets: invite, change, remove, and set a password from a one-time link."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.domain import access
from app.domain.cabinets import Cabinet, check_name
from app.domain.errors import Conflict, DomainError, Forbidden, NotFound
from app.domain.events import MailQueued, UserInvited
from app.domain.paging import MAX_SEARCH, Page, PageRequest, check_sort
from app.domain.roles import Role
from app.domain.users import (
    USER_SORTS,
    Principal,
    User,
    check_email,
    check_password,
    check_role_fits_cabinet,
    email_key,
)
from app.services.mail import EmailComposer
from app.services.work import Transactions, UseCases
from ports.security import PasswordHasher
from ports.storage import DuplicateKey, UnitOfWork
from ports.system import Clock, IdGenerator


class InvalidPasswordToken(DomainError):
    slug = "invalid-token"
    title = "Invalid or expired link"


@dataclass(frozen=True)
class UserPolicy:
    password_min_length: int
    password_token_ttl: int
    base_url: str
    # "Forgot your password": how long such a link lives, and how many an account gets
    # in an hour (more are not sent, so nobody can flood a mailbox with them).
    password_reset_ttl: int = 3600
    password_links_per_hour: int = 3


@dataclass(frozen=True)
class Invitation:
    user: User
    set_password_url: str
    expires_at: datetime


@dataclass(frozen=True)
class PasswordLink:
    """A set-password link e-mailed to a user; `new_account`: they never set a password
    (the link invites them again)."""

    email: str
    expires_at: datetime
    new_account: bool


@dataclass(frozen=True)
class UserChanges:
    name: str | None = None
    role: Role | None = None
    active: bool | None = None


_SPENT_LINK = ("This link is invalid, used or expired. Ask for a new one with “Forgot your "
               "password?” on the sign-in page, or from your administrator.")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserService(UseCases):
    def __init__(self, work: Transactions, clock: Clock, ids: IdGenerator,
                 hasher: PasswordHasher, policy: UserPolicy, composer: EmailComposer) -> None:
        super().__init__(work, clock, ids)
        self._hasher = hasher
        self._policy = policy
        self._composer = composer

    async def list_in_cabinet(self, actor: Principal, cabinet_id: str, page: PageRequest,
                              search: str = "") -> Page[User]:
        """A visible cabinet's users; `search`: part of a name or address. A numbered page
        comes with the count."""
        search = search[:MAX_SEARCH]
        if page.sort is not None:
            check_sort(page.sort, USER_SORTS)
        async with self._work(read_only=True) as uow:
            cabinet = await self._cabinet(uow, actor, cabinet_id)
            scope = access.visible_scope(actor)
            rows = await uow.users.list_in_cabinet(cabinet.id, scope, page, search)
            if page.sort is None:
                return Page.from_rows(rows, page)
            return Page.numbered(rows, page, await uow.users.count_in_cabinet(
                cabinet.id, scope, search))

    async def get(self, actor: Principal, cabinet_id: str, user_id: str) -> User:
        async with self._work(read_only=True) as uow:
            cabinet = await self._cabinet(uow, actor, cabinet_id)
            return await self._member(uow, actor, cabinet, user_id)

    async def invite(self, actor: Principal, cabinet_id: str, email: str, name: str,
                     role: Role) -> Invitation:
        """A user without a password, and the one-time link with which they set it, which
        is also e-mailed to them (through the outbox, with the user)."""
        now = self._clock.now()
        expires_at = now + timedelta(seconds=self._policy.password_token_ttl)
        async with self._work() as uow:
            user = await self._add(uow, actor, cabinet_id, email, name, role, None)
            url = await self._new_link(uow, user, now, expires_at)
            inviter = await uow.users.get(actor.user_id, access.visible_scope(actor)) \
                if actor.user_id else None
            cabinet = await self._cabinet(uow, actor, cabinet_id)
            inviter_name = inviter.name if inviter else "The portal's administrator"
            await uow.outbox.add(self._composer.invitation(
                self._ids.new_id(), user.email, user.name, inviter_name, cabinet.name, url,
                expires_at, now))
            uow.events.record(MailQueued(count=1), UserInvited(
                user_id=user.id, cabinet_id=cabinet.id, cabinet_name=cabinet.name,
                inviter_name=inviter_name))
            await uow.commit()
        return Invitation(user, url, expires_at)

    async def create_with_password(self, actor: Principal, cabinet_id: str, email: str,
                                   name: str, role: Role, password: str) -> User:
        check_password(password, self._policy.password_min_length)
        password_hash = await self._hasher.hash(password)
        async with self._work() as uow:
            user = await self._add(uow, actor, cabinet_id, email, name, role, password_hash)
            await uow.commit()
        return user

    async def update(self, actor: Principal, cabinet_id: str, user_id: str,
                     changes: UserChanges) -> User:
        async with self._work() as uow:
            cabinet = await self._cabinet(uow, actor, cabinet_id)
            user = await self._member(uow, actor, cabinet, user_id, lock=True)
            access.require_may_change_user(actor, cabinet, user)
            own = user.id == actor.user_id
            before = {"name": user.name, "role": user.role.value, "active": user.active}
            if changes.name is not None:
                user.name = check_name(changes.name)
            if changes.role is not None and changes.role is not user.role:
                if own:
                    raise Forbidden("You cannot change your own role.", field="role")
                access.require_may_assign(actor, changes.role)
                check_role_fits_cabinet(changes.role, cabinet)
                user.role = changes.role
            if changes.active is not None and changes.active != user.active:
                if own:
                    raise Forbidden("You cannot deactivate yourself.", field="active")
                user.active = changes.active
            now = self._clock.now()
            user.updated_at = now
            await uow.users.update(user)
            if not user.active or user.role.value != before["role"]:
                await uow.sessions.revoke_all_of_user(user.id, now)
            if not user.active:
                await uow.sessions.drop_password_tokens(user.id)
            after = {"name": user.name, "role": user.role.value, "active": user.active}
            await uow.audit.add(self._audit.entry(
                "user.updated", actor, "user", user.id, cabinet.id,
                changes={k: [before[k], after[k]] for k in after if before[k] != after[k]}))
            await uow.commit()
        return user

    async def delete(self, actor: Principal, cabinet_id: str, user_id: str) -> None:
        async with self._work() as uow:
            cabinet = await self._cabinet(uow, actor, cabinet_id)
            user = await self._member(uow, actor, cabinet, user_id, lock=True)
            access.require_may_change_user(actor, cabinet, user)
            if user.id == actor.user_id:
                raise Forbidden("You cannot delete yourself.")
            now = self._clock.now()
            # The row stays for the audit trail; freeing the key lets the address be invited again.
            user.email_key, user.active, user.deleted_at, user.updated_at = None, False, now, now
            await uow.users.update(user)
            await uow.sessions.revoke_all_of_user(user.id, now)
            await uow.sessions.drop_password_tokens(user.id)
            await uow.audit.add(self._audit.entry(
                "user.deleted", actor, "user", user.id, cabinet.id, email=user.email))
            await uow.commit()

    async def request_password_link(self, email: str, address: str | None) -> None:
        """“Forgot your password?”: a short-lived one-time link e-mailed (through the
        outbox) if an active user has this address, at most `password_links_per_hour` an
        hour to one account. The caller learns nothing either way: the answer is the same
        for every address, so it tells nobody which addresses have accounts."""
        key = email_key(check_email(email))
        now = self._clock.now()
        async with self._work() as uow:
            found = await uow.users.get_by_email_key(key)
            # Locked: two requests at once must not both find room under the cap.
            user = await uow.users.get(found.id, access.Scope.everything(),
                                       for_update=True) if found else None
            if user is None or not user.active:
                return
            if await uow.sessions.password_links_since(user.id, now - timedelta(hours=1)) \
                    >= self._policy.password_links_per_hour:
                return
            # Short-lived even for a user who never set a password: whoever asks here is
            # not vouched for by an administrator.
            await self._send_link(uow, user, now, None, address,
                                  lifetime=self._policy.password_reset_ttl)
            await uow.commit()

    async def send_password_link(self, actor: Principal, cabinet_id: str,
                                 user_id: str) -> PasswordLink:
        """An administrator's “send a reset link”, or “resend the invitation” to a user who
        never set a password: a new one-time link e-mailed to the user."""
        now = self._clock.now()
        async with self._work() as uow:
            cabinet = await self._cabinet(uow, actor, cabinet_id)
            user = await self._member(uow, actor, cabinet, user_id)
            access.require_may_change_user(actor, cabinet, user)
            if not user.active:
                raise Conflict("This user is deactivated: activate them first, then send "
                               "the link.")
            link = await self._send_link(uow, user, now, actor, None)
            await uow.commit()
        return link

    async def _send_link(self, uow: UnitOfWork, user: User, now: datetime,
                         actor: Principal | None, address: str | None, *,
                         lifetime: int | None = None) -> PasswordLink:
        """E-mail a new link: an invitation again to a user who never set a password (it
        lives as long as an invitation), else a reset link (short-lived)."""
        new_account = user.password_hash is None
        if lifetime is None:
            lifetime = self._policy.password_token_ttl if new_account \
                else self._policy.password_reset_ttl
        expires_at = now + timedelta(seconds=lifetime)
        url = await self._new_link(uow, user, now, expires_at)
        await uow.outbox.add(self._composer.password_link(
            self._ids.new_id(), user.email, user.name, url, expires_at, now,
            new_account=new_account, asked=actor is None))
        uow.events.record(MailQueued(count=1))
        await uow.audit.add(self._audit.entry(
            "user.password_link_sent", actor, "user", user.id, user.cabinet_id,
            address=address, new_account=new_account))
        return PasswordLink(user.email, expires_at, new_account)

    async def _new_link(self, uow: UnitOfWork, user: User, now: datetime,
                        expires_at: datetime) -> str:
        """A one-time set-password link for the user; only its hash is stored."""
        token = secrets.token_urlsafe(32)
        await uow.sessions.add_password_token(_token_hash(token), user.id, expires_at, now)
        return f"{self._policy.base_url.rstrip('/')}/password/set?token={token}"

    async def check_password_link(self, token: str) -> User:
        """The user a set-password link is for, or InvalidPasswordToken; the link stays valid."""
        async with self._work(read_only=True) as uow:
            user_id = await uow.sessions.password_token_user(_token_hash(token), self._clock.now())
            user = await uow.users.get(user_id, access.Scope.everything()) if user_id else None
        if user is None:
            raise InvalidPasswordToken(_SPENT_LINK, field="token")
        return user

    @property
    def password_min_length(self) -> int:
        return self._policy.password_min_length

    async def set_password(self, token: str, password: str, address: str | None) -> User:
        """Spend a one-time link: set the password and end every login of that user."""
        check_password(password, self._policy.password_min_length)
        password_hash = await self._hasher.hash(password)
        now = self._clock.now()
        async with self._work() as uow:
            user_id = await uow.sessions.use_password_token(_token_hash(token), now)
            user = await uow.users.get(user_id, access.Scope.everything(),
                                       for_update=True) if user_id else None
            if user is None or not user.active:
                raise InvalidPasswordToken(_SPENT_LINK, field="token")
            user.password_hash, user.updated_at = password_hash, now
            await uow.users.update(user)
            await uow.sessions.revoke_all_of_user(user.id, now)
            await uow.sessions.drop_password_tokens(user.id)  # older links die with this one
            await uow.audit.add(self._audit.entry(
                "user.password_set", None, "user", user.id, user.cabinet_id, address=address))
            await uow.commit()
        return user

    async def reset_password(self, actor: Principal, user_id: str, password: str) -> User:
        """Set a password directly and reactivate the user (the operator's tool)."""
        check_password(password, self._policy.password_min_length)
        password_hash = await self._hasher.hash(password)
        async with self._work() as uow:
            user = await uow.users.get(user_id, access.visible_scope(actor), for_update=True)
            if user is None:
                raise NotFound("No such user.")
            cabinet = await self._cabinet(uow, actor, user.cabinet_id)
            access.require_may_change_user(actor, cabinet, user)
            now = self._clock.now()
            user.password_hash, user.active, user.updated_at = password_hash, True, now
            await uow.users.update(user)
            await uow.sessions.revoke_all_of_user(user.id, now)
            await uow.audit.add(self._audit.entry(
                "user.password_reset", actor, "user", user.id, cabinet.id))
            await uow.commit()
        return user

    async def find_by_email(self, actor: Principal, email: str) -> User | None:
        """The user with this e-mail address, if the actor sees their organisation."""
        async with self._work(read_only=True) as uow:
            found = await uow.users.get_by_email_key(email_key(email))
            if found is None:
                return None
            return await uow.users.get(found.id, access.visible_scope(actor))

    async def _add(self, uow: UnitOfWork, actor: Principal, cabinet_id: str, email: str,
                   name: str, role: Role, password_hash: str | None) -> User:
        cabinet = await self._cabinet(uow, actor, cabinet_id)
        access.require_may_manage_users(actor, cabinet)
        access.require_may_assign(actor, role)
        check_role_fits_cabinet(role, cabinet)
        email = check_email(email)
        now = self._clock.now()
        user = User(id=self._ids.new_id(), email=email, email_key=email_key(email),
                    name=check_name(name) if name.strip() else email.split("@")[0],
                    role=role, cabinet_id=cabinet.id, active=True, password_hash=password_hash,
                    created_at=now, updated_at=now)
        try:
            await uow.users.add(user)
        except DuplicateKey:
            raise Conflict("A user with this e-mail address exists already.",
                           field="email") from None
        await uow.audit.add(self._audit.entry(
            "user.created", actor, "user", user.id, cabinet.id, email=email, role=role.value))
        return user

    @staticmethod
    async def _cabinet(uow: UnitOfWork, actor: Principal, cabinet_id: str) -> Cabinet:
        cabinet = await uow.cabinets.get(cabinet_id, access.visible_scope(actor))
        return access.require_visible(actor, cabinet)

    @staticmethod
    async def _member(uow: UnitOfWork, actor: Principal, cabinet: Cabinet, user_id: str, *,
                      lock: bool = False) -> User:
        user = await uow.users.get(user_id, access.visible_scope(actor), for_update=lock)
        if user is None or user.cabinet_id != cabinet.id:
            raise NotFound("No such user.")
        return user
