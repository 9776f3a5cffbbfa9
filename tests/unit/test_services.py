"""The use cases on in-memory fakes: rules that need time to pass, without I/O or HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

import pytest

from app.config import PROJECT_ROOT
from app.domain.access import Scope
from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.errors import Conflict, Forbidden, Invalid, Throttled, Unauthenticated
from app.domain.paging import PageRequest
from app.domain.roles import Role
from app.domain.sessions import TokenPair
from app.domain.users import SYSTEM, Principal
from app.services.auth import AuthPolicy, AuthService
from app.services.cabinets import CabinetChanges, CabinetService
from app.services.mail import EmailComposer, MailPolicy
from app.services.notifier import Notifier
from app.services.users import InvalidPasswordToken, UserChanges, UserPolicy, UserService
from app.services.work import Transactions
from tests.fakes import (
    FakeClock,
    FakeIds,
    FakePasswordHasher,
    FakeStorage,
    FakeTokenCodec,
    RecordingEventBus,
)

PASSWORD = "a long enough password"
POLICY = AuthPolicy(access_ttl=900, refresh_ttl=3600, absolute_ttl=7200, throttle_window=900,
                    max_account_failures=3, max_address_failures=10, refresh_grace=10)


@dataclass
class Core:
    storage: FakeStorage
    clock: FakeClock
    auth: AuthService
    cabinets: CabinetService
    users: UserService

    async def customer(self, role: Role = Role.CUSTOMER_ADMIN) -> tuple[Cabinet, str]:
        cabinet = await self.cabinets.create(SYSTEM, "Acme", CabinetKind.CUSTOMER, None)
        user = await self.users.create_with_password(
            SYSTEM, cabinet.id, f"{role.value}@acme.example", "Ann", role, PASSWORD)
        return cabinet, user.email


@pytest.fixture
def core() -> Core:
    storage, clock, ids = FakeStorage(), FakeClock(), FakeIds()
    hasher = FakePasswordHasher()
    composer = EmailComposer(MailPolicy(sender="portal@portal.example",
                                        base_url="https://portal.example", brand="Acme",
                                        templates=PROJECT_ROOT / "templates"))
    notifier = Notifier(clock, ids, composer)
    work = Transactions(storage, RecordingEventBus(), notifier.prepare)
    return Core(
        storage, clock,
        AuthService(work, clock, ids, hasher, FakeTokenCodec(clock), POLICY),
        CabinetService(work, clock, ids),
        UserService(work, clock, ids, hasher,
                    UserPolicy(password_min_length=10, password_token_ttl=3600,
                               base_url="https://portal.example"), composer))


async def test_access_tokens_expire_and_refresh_renews_them(core: Core) -> None:
    _, email = await core.customer()
    pair = await core.auth.login(email, PASSWORD, "192.0.2.1")
    assert (await core.auth.authenticate(pair.access_token)).email == email
    core.clock.advance(seconds=POLICY.access_ttl + 1)
    with pytest.raises(Unauthenticated):
        await core.auth.authenticate(pair.access_token)
    renewed = await core.auth.refresh(pair.refresh_token, "192.0.2.1")
    assert (await core.auth.authenticate(renewed.access_token)).email == email


async def test_a_login_ends_at_its_absolute_lifetime_however_often_refreshed(core: Core) -> None:
    _, email = await core.customer()
    pair = await core.auth.login(email, PASSWORD, None)
    for _ in range(2):  # 0:50 and 1:40 after signing in
        core.clock.advance(minutes=50)
        pair = await core.auth.refresh(pair.refresh_token, None)
    core.clock.advance(minutes=21)  # 2:01: past the two hours the login may last
    with pytest.raises(Unauthenticated):
        await core.auth.refresh(pair.refresh_token, None)


async def test_reuse_revokes_the_login_but_the_browser_grace_does_not(core: Core) -> None:
    _, email = await core.customer()
    pair = await core.auth.login(email, PASSWORD, None)
    principal, renewed = await core.auth.resume_session(pair.refresh_token, None)
    assert isinstance(renewed, TokenPair) and principal.email == email
    core.clock.advance(seconds=5)
    # A concurrent request of the same browser presents the spent token: let in, no tokens.
    again, none = await core.auth.resume_session(pair.refresh_token, None)
    assert none is None and again.session_id == principal.session_id
    assert (await core.auth.authenticate(renewed.access_token)).email == email
    core.clock.advance(seconds=10)
    # Later than the grace period: theft. The whole login ends.
    with pytest.raises(Unauthenticated):
        await core.auth.resume_session(pair.refresh_token, None)
    with pytest.raises(Unauthenticated):
        await core.auth.authenticate(renewed.access_token)
    with pytest.raises(Unauthenticated):
        await core.auth.refresh(renewed.refresh_token, None)


async def test_throttling_lasts_one_window(core: Core) -> None:
    _, email = await core.customer()
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            await core.auth.login(email, "wrong", "192.0.2.9")
    with pytest.raises(Throttled) as throttled:
        await core.auth.login(email, PASSWORD, "192.0.2.9")
    assert throttled.value.retry_after == 901
    core.clock.advance(seconds=600)
    with pytest.raises(Throttled) as later:
        await core.auth.login(email, PASSWORD, "192.0.2.9")
    assert later.value.retry_after == 301
    core.clock.advance(seconds=301)
    assert await core.auth.login(email, PASSWORD, "192.0.2.9")


async def test_failed_sign_ins_are_audited_with_the_address(core: Core) -> None:
    cabinet, email = await core.customer()
    with pytest.raises(Unauthenticated):
        await core.auth.login(email, "wrong", "203.0.113.5")
    async with core.storage.unit_of_work() as uow:
        entries = await uow.audit.list_visible(Scope.everything(), PageRequest(50))
    failed = [e for e in entries if e.action == "login.failed"]
    assert [(e.address, e.cabinet_id, e.details["email"]) for e in failed] == [
        ("203.0.113.5", cabinet.id, email)]


async def test_a_deactivated_user_cannot_refresh(core: Core) -> None:
    cabinet, email = await core.customer(Role.CUSTOMER_USER)
    pair = await core.auth.login(email, PASSWORD, None)
    user = await core.users.find_by_email(SYSTEM, email)
    assert user is not None
    stranger = Principal(None, "x@y.test", Role.CUSTOMER_ADMIN, "elsewhere", "/elsewhere/")
    assert await core.users.find_by_email(stranger, email) is None
    await core.users.update(SYSTEM, cabinet.id, user.id, UserChanges(active=False))
    with pytest.raises(Unauthenticated):
        await core.auth.refresh(pair.refresh_token, None)


async def test_set_password_links_expire(core: Core) -> None:
    cabinet, _ = await core.customer()
    invitation = await core.users.invite(SYSTEM, cabinet.id, "new@acme.example", "",
                                         Role.CUSTOMER_USER)
    token = invitation.set_password_url.split("token=")[1]
    assert invitation.set_password_url.startswith("https://portal.example/password/set?")
    assert (await core.users.check_password_link(token)).email == "new@acme.example"
    core.clock.advance(seconds=3601)
    with pytest.raises(InvalidPasswordToken):
        await core.users.check_password_link(token)
    with pytest.raises(InvalidPasswordToken):
        await core.users.set_password(token, PASSWORD, None)


async def test_a_refused_use_case_writes_nothing(core: Core) -> None:
    cabinet, email = await core.customer()
    before = len(core.storage.state.users), len(core.storage.state.audit)
    with pytest.raises(Invalid):
        await core.users.invite(SYSTEM, cabinet.id, "staff@acme.example", "", Role.STAFF)
    with pytest.raises(Conflict):
        await core.users.invite(SYSTEM, cabinet.id, email.upper(), "", Role.CUSTOMER_USER)
    assert (len(core.storage.state.users), len(core.storage.state.audit)) == before
    assert not core.storage.state.outbox and not core.storage.state.notifications


async def test_an_invitation_is_e_mailed_with_its_link(core: Core) -> None:
    cabinet, _ = await core.customer()
    invitation = await core.users.invite(SYSTEM, cabinet.id, "new@acme.example", "Nia New",
                                         Role.CUSTOMER_USER)
    [mail] = core.storage.state.outbox.values()
    assert mail.recipient == "Nia New <new@acme.example>"
    assert mail.subject == "Your account in the Acme customer portal"
    assert invitation.set_password_url in mail.text_body
    assert f'href="{invitation.set_password_url}"' in (mail.html_body or "")
    assert "Acme" in mail.text_body and "new@acme.example" in mail.text_body
    [welcome] = core.storage.state.notifications
    assert (welcome.user_id, welcome.kind.value) == (invitation.user.id, "user.invited")
    assert welcome.title == "Welcome to the Acme portal"


async def test_moves_keep_the_tree_a_tree(core: Core) -> None:
    top = await core.cabinets.create(SYSTEM, "Top", CabinetKind.CUSTOMER, None)
    middle = await core.cabinets.create(SYSTEM, "Middle", CabinetKind.CUSTOMER, top.id)
    low = await core.cabinets.create(SYSTEM, "Low", CabinetKind.CUSTOMER, middle.id)
    with pytest.raises(Invalid):
        await core.cabinets.update(SYSTEM, top.id, CabinetChanges(parent_id=low.id))
    other = await core.cabinets.create(SYSTEM, "Other", CabinetKind.CUSTOMER, None)
    await core.cabinets.update(SYSTEM, middle.id, CabinetChanges(parent_id=other.id))
    moved_low = await core.cabinets.get(SYSTEM, low.id)
    assert moved_low.path == f"/{other.id}/{middle.id}/{low.id}/"
    lineage = await core.cabinets.lineage(SYSTEM, moved_low)
    assert [c.name for c in lineage] == ["Other", "Middle"]


async def test_me_names_the_chain_above_even_if_the_cabinet_moved_after_sign_in(
        core: Core) -> None:
    top = await core.cabinets.create(SYSTEM, "Top", CabinetKind.CUSTOMER, None)
    own = await core.cabinets.create(SYSTEM, "Own", CabinetKind.CUSTOMER, top.id)
    user = await core.users.create_with_password(SYSTEM, own.id, "u@own.example", "Uma",
                                                 Role.CUSTOMER_USER, PASSWORD)
    pair = await core.auth.login(user.email, PASSWORD, None)
    principal = await core.auth.authenticate(pair.access_token)
    assert [c.name for c in (await core.auth.me(principal)).ancestors] == ["Top"]

    # The request authenticated before the move still reads the chain as it is now.
    other = await core.cabinets.create(SYSTEM, "Other", CabinetKind.CUSTOMER, None)
    await core.cabinets.update(SYSTEM, top.id, CabinetChanges(parent_id=other.id))
    assert [c.name for c in (await core.auth.me(principal)).ancestors] == ["Other", "Top"]


async def test_customer_admins_manage_below_but_not_their_own_cabinet(core: Core) -> None:
    cabinet, email = await core.customer()
    pair = await core.auth.login(email, PASSWORD, None)
    admin: Principal = await core.auth.authenticate(pair.access_token)
    child = await core.cabinets.create(admin, "Child", CabinetKind.CUSTOMER, cabinet.id)
    renamed = await core.cabinets.update(admin, child.id, CabinetChanges(name="Renamed"))
    assert renamed.name == "Renamed"
    with pytest.raises(Forbidden):
        await core.cabinets.update(admin, cabinet.id, CabinetChanges(name="Mine"))
    with pytest.raises(Forbidden):
        await core.cabinets.create(admin, "Top", CabinetKind.CUSTOMER, None)


async def test_a_name_with_commas_and_brackets_stays_one_recipient(core: Core) -> None:
    cabinet, _ = await core.customer()
    await core.users.invite(SYSTEM, cabinet.id, "bob@acme.example",
                            "Eve <eve@evil.example>, Bob", Role.CUSTOMER_USER)
    [mail] = core.storage.state.outbox.values()
    header = EmailMessage()
    header["To"] = mail.recipient
    assert [a.addr_spec for a in header["To"].addresses] == ["bob@acme.example"]
