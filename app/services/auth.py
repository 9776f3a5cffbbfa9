"""Sign-in, token rotation with reuse detection, sign-out, and who a token belongs to."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.domain.access import Scope, permissions, visible_scope
from app.domain.cabinets import Cabinet, ancestor_ids
from app.domain.errors import NotFound, Throttled, Unauthenticated
from app.domain.paging import MAX_LIMIT, PageRequest
from app.domain.sessions import LoginSession, TokenPair
from app.domain.users import MAX_PASSWORD_LENGTH, Principal, User, email_key
from app.services.work import Transactions, UseCases
from ports.security import InvalidToken, PasswordHasher, TokenCodec
from ports.storage import UnitOfWork
from ports.system import Clock, IdGenerator

log = logging.getLogger(__name__)

BAD_CREDENTIALS = "The e-mail address or the password is wrong."
BAD_TOKEN = "The token is invalid or has expired."
ACCESS, REFRESH = "access", "refresh"


@dataclass(frozen=True)
class AuthPolicy:
    access_ttl: int
    refresh_ttl: int
    absolute_ttl: int
    throttle_window: int
    max_account_failures: int
    max_address_failures: int
    # Seconds in which a refresh token just spent still signs in a concurrent browser request.
    refresh_grace: int = 0


@dataclass(frozen=True)
class Me:
    user: User
    cabinet: Cabinet
    ancestors: list[Cabinet]
    children: list[Cabinet]
    permissions: list[str]


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


class AuthService(UseCases):
    def __init__(self, work: Transactions, clock: Clock, ids: IdGenerator,
                 hasher: PasswordHasher, tokens: TokenCodec, policy: AuthPolicy) -> None:
        super().__init__(work, clock, ids)
        self._hasher = hasher
        self._tokens = tokens
        self._policy = policy

    async def login(self, email: str, password: str, address: str | None) -> TokenPair:
        """Tokens for a right e-mail and password. A wrong e-mail, a wrong password and a
        deactivated account answer alike and take alike long."""
        key = email_key(email)
        limits = {f"account:{key}": self._policy.max_account_failures}
        if address:
            limits[f"address:{address}"] = self._policy.max_address_failures
        now = self._clock.now()
        window = timedelta(seconds=self._policy.throttle_window)
        # Every attempt counts before the password is checked, so a burst of concurrent
        # guesses cannot all slip under the limit; a success takes its attempt back.
        async with self._work() as uow:
            counts = {k: await uow.login_throttle.hit(k, now, now - window) for k in limits}
            await uow.commit()
        for throttle_key, (attempts, started) in counts.items():
            if attempts > limits[throttle_key]:
                wait = max(1, int((started + window - now).total_seconds()) + 1)
                raise Throttled(f"Too many failed sign-ins. Try again {_after(wait)}, or choose a "
                                "new password with “Forgot your password?”.", retry_after=wait)
        async with self._work(read_only=True) as uow:
            user = await uow.users.get_by_email_key(key)
        known_hash = user.password_hash if user else None
        matches = await self._hasher.verify(known_hash, password[:MAX_PASSWORD_LENGTH])
        now = self._clock.now()
        async with self._work() as uow:
            if not (matches and user and user.active):
                await uow.login_throttle.prune(now - window)
                await uow.audit.add(self._audit.entry(
                    "login.failed", None, "user", user.id if user else None,
                    user.cabinet_id if user else None, address=address, email=key))
                await uow.commit()
                raise Unauthenticated(BAD_CREDENTIALS)
            await uow.login_throttle.reset(f"account:{key}")
            if address:
                await uow.login_throttle.forgive(f"address:{address}")
            session = LoginSession(
                id=self._ids.new_id(), user_id=user.id, created_at=now,
                expires_at=now + timedelta(seconds=self._policy.absolute_ttl))
            await uow.sessions.add(session)
            await uow.users.mark_signed_in(user.id, now)
            pair = await self._issue(uow, user, session, now)
            await uow.audit.add(self._audit.entry(
                "login", Principal(user.id, user.email, user.role, user.cabinet_id, "",
                                   session.id, address),
                "user", user.id, user.cabinet_id))
            await uow.commit()
        if known_hash and self._hasher.needs_rehash(known_hash):
            await self._rehash(user, password[:MAX_PASSWORD_LENGTH])
        return pair

    async def refresh(self, refresh_token: str, address: str | None) -> TokenPair:
        """Rotate: the presented token is spent and a new pair issued. A spent token
        presented again means it leaked: the whole login is revoked."""
        result = await self._rotate(refresh_token, address, grace=0)
        assert isinstance(result, TokenPair)
        return result

    async def resume_session(self, refresh_token: str,
                             address: str | None) -> tuple[Principal, TokenPair | None]:
        """The browser's renewal: like `refresh`, but a token that a concurrent request of
        the same browser spent within the grace period signs this one request in without
        new tokens (the other request's answer carries them), instead of counting as reuse."""
        result = await self._rotate(refresh_token, address, grace=self._policy.refresh_grace)
        if isinstance(result, TokenPair):
            return await self.authenticate(result.access_token, address), result
        return result, None

    async def _rotate(self, refresh_token: str, address: str | None,
                      grace: int) -> TokenPair | Principal:
        claims = self._claims(refresh_token, REFRESH)
        jti = str(claims.get("jti"))
        now = self._clock.now()
        async with self._work() as uow:
            session = await uow.sessions.get(str(claims.get("sid")))
            if session is None or session.user_id != claims.get("sub"):
                raise Unauthenticated(BAD_TOKEN)
            user = await uow.users.get(session.user_id, Scope.everything())
            if not session.is_live(now) or user is None or not user.active:
                raise Unauthenticated(BAD_TOKEN)
            if not await uow.sessions.use_refresh_token(jti, session.id, now):
                spent = await uow.sessions.refresh_token_used_at(jti, session.id)
                if grace and spent is not None and now - spent <= timedelta(seconds=grace):
                    cabinet = await uow.cabinets.get(user.cabinet_id, Scope.everything())
                    if cabinet is None:
                        raise Unauthenticated(BAD_TOKEN)
                    return Principal.of(user, cabinet, session.id, address)
                await uow.sessions.revoke(session.id, now)
                await uow.audit.add(self._audit.entry(
                    "token.reuse_detected", None, "session", session.id, user.cabinet_id,
                    address=address, user_id=user.id))
                await uow.commit()
                log.warning("refresh token reuse: session %s of user %s revoked",
                            session.id, user.id)
                raise Unauthenticated(BAD_TOKEN)
            pair = await self._issue(uow, user, session, now)
            await uow.commit()
        return pair

    async def revoke(self, principal: Principal | None, refresh_token: str | None) -> None:
        """Sign out the login a refresh token belongs to, or else the caller's own login."""
        if refresh_token:
            session_id = str(self._claims(refresh_token, REFRESH).get("sid"))
        elif principal is not None and principal.session_id:
            session_id = principal.session_id
        else:
            raise Unauthenticated(BAD_TOKEN)
        async with self._work() as uow:
            session = await uow.sessions.get(session_id)
            if session is None:
                raise Unauthenticated(BAD_TOKEN)
            await uow.sessions.revoke(session.id, self._clock.now())
            await uow.audit.add(self._audit.entry(
                "logout", principal, "session", session.id,
                principal.cabinet_id if principal else None, user_id=session.user_id))
            await uow.commit()

    async def authenticate(self, access_token: str, address: str | None = None) -> Principal:
        """The principal of a valid access token whose login and user are still live."""
        claims = self._claims(access_token, ACCESS)
        async with self._work(read_only=True) as uow:
            found = await uow.sessions.signed_in(str(claims.get("sid")), str(claims.get("sub")))
        if found is None:
            raise Unauthenticated(BAD_TOKEN)
        session, user, cabinet = found
        if not user.active or not session.is_live(self._clock.now()):
            raise Unauthenticated(BAD_TOKEN)
        return Principal.of(user, cabinet, session.id, address)

    async def me(self, principal: Principal) -> Me:
        if principal.user_id is None or principal.cabinet_id is None:
            raise NotFound("The command line has no user of its own.")
        async with self._work(read_only=True) as uow:
            user = await uow.users.get(principal.user_id, Scope.everything())
            # One's own cabinet and the chain above it, which is shown by name even where the
            # access rule would not let one open those cabinets: in one read, by the path
            # the request was authenticated with (read again if the cabinet moved since).
            chain = {c.id: c for c in await uow.cabinets.get_many(
                [*ancestor_ids(principal.cabinet_path), principal.cabinet_id],
                Scope.everything())}
            cabinet = chain.get(principal.cabinet_id)
            if user is None or cabinet is None:
                raise Unauthenticated(BAD_TOKEN)
            ancestors = [chain[i] for i in cabinet.ancestor_ids if i in chain]
            if len(ancestors) < len(cabinet.ancestor_ids):
                ancestors = await uow.cabinets.get_many(cabinet.ancestor_ids,
                                                        Scope.everything())
            children = await uow.cabinets.children(cabinet.id, visible_scope(principal),
                                                   PageRequest(MAX_LIMIT))
        ancestors.sort(key=lambda c: len(c.path))
        return Me(user, cabinet, ancestors, children[:MAX_LIMIT],
                  permissions(Principal.of(user, cabinet), cabinet))

    def public_jwks(self) -> dict[str, object]:
        return self._tokens.public_jwks()

    def _claims(self, token: str, kind: str) -> dict[str, object]:
        try:
            claims = self._tokens.decode(token)
        except InvalidToken:
            raise Unauthenticated(BAD_TOKEN) from None
        if claims.get("typ") != kind:
            raise Unauthenticated(BAD_TOKEN)
        return claims

    async def _issue(self, uow: UnitOfWork, user: User, session: LoginSession,
                     now: datetime) -> TokenPair:
        access = self._tokens.encode({
            "sub": user.id, "typ": ACCESS, "sid": session.id, "jti": self._ids.new_id(),
            "role": user.role.value, "cab": user.cabinet_id,
            "iat": _ts(now), "exp": _ts(now) + self._policy.access_ttl,
        })
        refresh_expires = min(now + timedelta(seconds=self._policy.refresh_ttl),
                              session.expires_at)
        jti = self._ids.new_id()
        refresh = self._tokens.encode({
            "sub": user.id, "typ": REFRESH, "sid": session.id, "jti": jti,
            "iat": _ts(now), "exp": _ts(refresh_expires),
        })
        await uow.sessions.add_refresh_token(jti, session.id, refresh_expires)
        return TokenPair(access, refresh, self._policy.access_ttl, session.id)

    async def _rehash(self, user: User, password: str) -> None:
        new_hash = await self._hasher.hash(password)
        async with self._work() as uow:
            current = await uow.users.get(user.id, Scope.everything(), for_update=True)
            if current is not None and current.password_hash == user.password_hash:
                current.password_hash = new_hash
                await uow.users.update(current)
                await uow.commit()


def _after(seconds: int) -> str:
    """When to come back, as a person says it: "in 40 seconds", "in 15 minutes"."""
    if seconds < 90:
        return f"in {seconds} second{'' if seconds == 1 else 's'}"
    return f"in {round(seconds / 60)} minutes"
