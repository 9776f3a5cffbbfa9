"""Scheduled reports on the core: who may have one, each period's e-mail once with a link
(never the file), the link for its owner only and for a while, and the end of a
subscription whose owner can no longer have it."""

from __future__ import annotations

import pytest

from app.domain.errors import Forbidden, NotFound
from app.domain.licensing import DocumentKind
from app.domain.reports import ReportFormat, ReportKind
from app.domain.roles import Role
from app.domain.subscriptions import Cadence
from app.domain.users import SYSTEM
from app.services.subscriptions import SubscriptionDraft
from app.services.users import UserChanges
from tests.unit.core import Core, Tree


async def setting() -> tuple[Core, Tree]:
    core = Core()
    tree = await core.tree()
    await core.document(DocumentKind.LICENSE, tree.own, tree.product)
    return core, tree


def links(core: Core) -> list[str]:
    return [m.text_body.split("\n\n")[2].strip() for m in sorted(
        core.storage.state.outbox.values(), key=lambda m: m.created_at)]


async def test_only_administrators_schedule_and_only_in_reach() -> None:
    core, tree = await setting()
    draft = SubscriptionDraft(ReportKind.LICENSES, ReportFormat.CSV, Cadence.WEEKLY)
    with pytest.raises(Forbidden):
        await core.subscriptions.subscribe(tree.actors[Role.CUSTOMER_USER], draft)
    with pytest.raises(NotFound):
        await core.subscriptions.subscribe(tree.actors[Role.CUSTOMER_ADMIN], SubscriptionDraft(
            ReportKind.LICENSES, ReportFormat.CSV, Cadence.WEEKLY, cabinet_id=tree.foreign.id))
    made = await core.subscriptions.subscribe(tree.actors[Role.CUSTOMER_ADMIN], draft)
    staff = await core.subscriptions.subscribe(tree.actors[Role.STAFF], SubscriptionDraft(
        ReportKind.ISSUES, ReportFormat.PDF, Cadence.MONTHLY, cabinet_id=tree.foreign.id))
    assert await core.subscriptions.of_user(tree.actors[Role.CUSTOMER_ADMIN]) == [made]
    with pytest.raises(NotFound):  # someone else's
        await core.subscriptions.cancel(tree.actors[Role.CUSTOMER_ADMIN], staff.id)


async def test_each_period_sends_one_link_and_the_link_is_its_owners_for_a_week() -> None:
    core, tree = await setting()
    admin = tree.actors[Role.CUSTOMER_ADMIN]
    await core.subscriptions.subscribe(admin, SubscriptionDraft(
        ReportKind.LICENSES, ReportFormat.XLSX, Cadence.WEEKLY, include_children=False))
    await core.subscriptions.subscribe(admin, SubscriptionDraft(
        ReportKind.CERTIFICATES, ReportFormat.CSV, Cadence.MONTHLY))
    assert await core.subscriptions.send_due() == 2
    assert await core.subscriptions.send_due() == 0  # the same week and month: nothing
    [weekly, _] = links(core)
    [message] = [m for m in core.storage.state.outbox.values() if "weekly" in m.subject]
    assert message.recipient.endswith(f"<{tree.users[Role.CUSTOMER_ADMIN].email}>")
    assert "Licenses, Acme" in message.subject and "XLSX" in message.text_body
    assert weekly.startswith("https://portal.example/reports/scheduled/")

    token = weekly.rsplit("/", 1)[1]
    query, fmt = await core.subscriptions.open_link(admin, token)
    assert fmt is ReportFormat.XLSX and query.kind is ReportKind.LICENSES
    assert not query.include_children
    for wrong in (token[:-1] + ("0" if token[-1] != "0" else "1"), token.replace("W", "X"),
                  "nonsense"):
        with pytest.raises(NotFound):
            await core.subscriptions.open_link(admin, wrong)
    with pytest.raises(NotFound):
        await core.subscriptions.open_link(tree.actors[Role.STAFF_ADMIN], token)

    core.clock.advance(days=8)  # the next week (and the link has run out)
    with pytest.raises(NotFound):
        await core.subscriptions.open_link(admin, token)
    sent = await core.subscriptions.send_due()
    assert sent == (2 if core.clock.now().month != 11 else 1)
    assert len(core.storage.state.outbox) == 2 + sent


async def test_a_subscription_ends_when_its_owner_can_no_longer_have_it() -> None:
    core, tree = await setting()
    admin = tree.actors[Role.CUSTOMER_ADMIN]
    await core.subscriptions.subscribe(admin, SubscriptionDraft(
        ReportKind.LICENSES, ReportFormat.CSV, Cadence.WEEKLY, cabinet_id=tree.child.id))
    await core.users.update(SYSTEM, tree.own.id, tree.users[Role.CUSTOMER_ADMIN].id,
                            UserChanges(role=Role.CUSTOMER_USER))
    assert await core.subscriptions.send_due() == 0
    assert core.storage.state.outbox == {} and core.storage.state.subscriptions == {}
