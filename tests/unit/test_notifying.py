"""What tells people, on fakes: announcements (held when large), read marks, settings,
expiry reminders as the days pass, and the outbox worker's retries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.domain.errors import Forbidden, Invalid, NotFound
from app.domain.events import NotificationsCreated
from app.domain.licensing import DocumentKind
from app.domain.notifications import NotificationKind, Preference
from app.domain.outbox import OutboxStatus
from app.domain.paging import PageRequest
from app.domain.roles import Role
from app.domain.users import SYSTEM
from app.services.notifications import Audience
from app.services.notifier import INLINE_RECIPIENTS
from app.services.reminders import LOCK
from ports.mail import PermanentMailError
from tests.unit.core import PASSWORD, Core


async def test_an_announcement_reaches_its_audience_and_only_staff_send_one() -> None:
    core = Core()
    tree = await core.tree()
    with pytest.raises(Forbidden):
        await core.notifications.announce(tree.actors[Role.CUSTOMER_ADMIN], "T", "B", None,
                                          Audience())
    with pytest.raises(Invalid):
        await core.notifications.announce(tree.actors[Role.STAFF], "T", "B", "javascript:x",
                                          Audience())
    told = await core.notifications.announce(tree.actors[Role.STAFF], "Tonight", "Upgrade.",
                                             "/products", Audience(cabinet_id=tree.own.id))
    assert told == 2
    assert core.told(tree.users[Role.CUSTOMER_ADMIN]) == ["Tonight"]
    assert core.told(tree.users[Role.STAFF]) == []
    products, cabinets = await core.notifications.audiences(tree.actors[Role.STAFF])
    assert [p.id for p in products] == [tree.product.id] and len(cabinets) == 6


async def test_a_large_announcement_is_held_then_spread_with_its_mail() -> None:
    core = Core()
    tree = await core.tree()
    many = [await core.users.create_with_password(
        SYSTEM, tree.foreign.id, f"u{n}@globex.test", f"U{n}", Role.CUSTOMER_USER, PASSWORD)
        for n in range(INLINE_RECIPIENTS + 5)]
    reader = tree.actors[Role.CUSTOMER_USER]
    told = await core.notifications.announce(SYSTEM, "All hands", "Hello.", None, Audience())
    assert told == len(many) + 4
    [created] = [e for e in core.bus.published if isinstance(e, NotificationsCreated)]
    assert created.held is True
    assert core.storage.state.notifications == [] and core.storage.state.outbox == {}
    # Readers count the held batch in before it is written.
    page, unread = await core.notifications.list_own(reader, PageRequest())
    assert [n.title for n in page.items] == ["All hands"] and unread == 1
    assert await core.notifications.spread_held() == 1
    assert len(core.storage.state.notifications) == told
    assert len(core.storage.state.outbox) == told
    page, unread = await core.notifications.list_own(reader, PageRequest())
    assert [n.title for n in page.items] == ["All hands"] and unread == 1


async def test_read_marks_and_deletion_are_the_owners_alone() -> None:
    core = Core()
    tree = await core.tree()
    await core.notifications.announce(SYSTEM, "One", "1", None, Audience(cabinet_id=tree.own.id))
    await core.notifications.announce(SYSTEM, "Two", "2", None, Audience(cabinet_id=tree.own.id))
    user, admin = tree.actors[Role.CUSTOMER_USER], tree.actors[Role.CUSTOMER_ADMIN]
    page, _ = await core.notifications.list_own(user, PageRequest())
    two, one = page.items
    with pytest.raises(NotFound):
        await core.notifications.mark(admin, one.id, True)
    assert (await core.notifications.mark(user, one.id, True)).read_at == core.clock.now()
    assert await core.notifications.unread_count(user) == 1
    assert await core.notifications.read_all(user) == 1
    await core.notifications.delete(user, two.id)
    with pytest.raises(NotFound):
        await core.notifications.delete(user, two.id)
    assert [n.title for n in (await core.notifications.list_own(user, PageRequest()))[0].items
            ] == ["One"]
    assert await core.notifications.unread_count(admin) == 2


async def test_settings_mute_a_kind_in_the_portal_or_by_e_mail() -> None:
    core = Core()
    tree = await core.tree()
    user = tree.actors[Role.CUSTOMER_USER]
    chosen = await core.notifications.set_preferences(user, {
        NotificationKind.ANNOUNCEMENT: Preference(in_app=False, email=True)})
    assert chosen[NotificationKind.ANNOUNCEMENT] == Preference(False, True)
    assert chosen[NotificationKind.RELEASE_PUBLISHED] == Preference()
    await core.notifications.announce(SYSTEM, "Quiet", "q", None, Audience(cabinet_id=tree.own.id))
    assert core.told(tree.users[Role.CUSTOMER_USER]) == []
    assert core.told(tree.users[Role.CUSTOMER_ADMIN]) == ["Quiet"]
    mailed = sorted(m.recipient for m in core.storage.state.outbox.values())
    assert mailed == ["customer_admin <customer_admin@example.test>",
                      "customer_user <customer_user@example.test>"]


async def test_expiry_reminders_go_once_per_stage_as_the_days_pass() -> None:
    core = Core()
    tree = await core.tree()
    today = core.clock.now().date()
    license_ = await core.document(DocumentKind.LICENSE, tree.child, tree.product,
                                   valid_to=today + timedelta(days=20))
    assert await core.reminders.run_once() == 1
    assert await core.reminders.run_once() == 0
    # The users of the holder (none here) and the admins of the customers above it.
    assert core.told(tree.users[Role.CUSTOMER_ADMIN]) == [
        f"License {license_.number} expires in 20 days"]
    assert core.told(tree.users[Role.CUSTOMER_USER]) == []
    core.clock.advance(days=14)  # 6 days left: the 7-day stage
    assert await core.reminders.run_once() == 1
    core.clock.advance(days=7)  # ended yesterday
    assert await core.reminders.run_once() == 1
    assert core.told(tree.users[Role.CUSTOMER_ADMIN])[1:] == [
        f"License {license_.number} expires in 6 days",
        f"License {license_.number} has expired"]
    # Renewed: the stages start over for the new end date.
    core.storage.state.licenses[license_.id].valid_to = core.clock.now().date() + \
        timedelta(days=1)
    assert await core.reminders.run_once() == 1
    # Another process holding the job: this one leaves it.
    await core.document(DocumentKind.CERTIFICATE, tree.own, tree.product,
                        valid_to=core.clock.now().date() + timedelta(days=3))
    core.storage.held_locks.add(LOCK)
    assert await core.reminders.run_once() == 0
    core.storage.held_locks.clear()
    assert await core.reminders.run_once() == 1


async def test_the_outbox_retries_later_gives_up_for_good_and_sends_each_once() -> None:
    core = Core()
    tree = await core.tree()
    await core.notifications.announce(SYSTEM, "Hello", "h", None,
                                      Audience(cabinet_id=tree.vendor.id))
    assert await core.outbox.run_once() == 2
    assert sorted(e.to for e in core.mailer.sent) == [
        "staff <staff@example.test>", "staff_admin <staff_admin@example.test>"]
    assert await core.outbox.run_once() == 0  # sent: never again

    await core.users.invite(SYSTEM, tree.child.id, "new@acme.test", "New", Role.CUSTOMER_USER)
    core.mailer.fail_next(1)
    assert await core.outbox.run_once() == 1
    [waiting] = [m for m in core.storage.state.outbox.values()
                 if m.status is OutboxStatus.PENDING]
    assert waiting.attempts == 1
    assert waiting.next_attempt_at
    assert waiting.next_attempt_at > core.clock.now() and waiting.last_error
    assert await core.outbox.run_once() == 0  # not due yet
    core.clock.advance(hours=2)
    core.mailer.fail_next(1, PermanentMailError("550 no such user"))
    assert await core.outbox.run_once() == 1
    assert waiting.message_id in {m.message_id for m in core.storage.state.outbox.values()
                                  if m.status is OutboxStatus.FAILED}
    failed = core.storage.state.outbox[waiting.message_id]
    assert failed.last_error == "550 no such user" and failed.text_body == ""
