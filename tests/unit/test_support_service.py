"""Support requests on fakes: the gate, who sees and changes what, the conversation and its
files, the response targets; and with an external helpdesk, delivery that survives its
outages and what its agents do coming back once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from app.domain.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge, UnsupportedType
from app.domain.events import IssueCommented, IssueOpened, IssueUpdated
from app.domain.licensing import DocumentKind
from app.domain.paging import PageRequest
from app.domain.roles import Role
from app.domain.support import (
    Delivery,
    IssueChanges,
    IssueFilter,
    IssueStatus,
    Priority,
    SupportIssue,
)
from app.domain.users import SYSTEM
from app.services.support import RequestDraft
from ports.helpdesk import HelpdeskRefused, HelpdeskUnavailable, InboundRefused
from tests.fakes import FakeHelpdesk
from tests.unit.core import Core, Tree


async def chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset:offset + size]


async def supported(core: Core) -> Tree:
    """The tree, with a valid premium certificate for the product in the own cabinet."""
    tree = await core.tree()
    await core.document(DocumentKind.CERTIFICATE, tree.own, tree.product)
    return tree


def draft(tree: Tree, **changes: object) -> RequestDraft:
    values: dict[str, object] = {"subject": "  Cannot   connect ", "product_id": tree.product.id,
                                 "description": "Since the upgrade.", "priority": Priority.HIGH}
    return RequestDraft(**{**values, **changes})  # type: ignore[arg-type]


async def test_opening_needs_a_valid_certificate_and_sets_the_targets_by_its_level() -> None:
    core = Core()
    tree = await core.tree()
    user = tree.actors[Role.CUSTOMER_USER]
    with pytest.raises(Invalid) as gate:
        await core.support.open(user, draft(tree))
    assert gate.value.field == "certificate_id" and "valid today" in gate.value.detail
    expired = await core.document(DocumentKind.CERTIFICATE, tree.own, tree.product,
                                  valid_to=core.clock.now().date() - timedelta(days=1))
    with pytest.raises(Invalid):
        await core.support.open(user, draft(tree, certificate_id=expired.id))
    with pytest.raises(Forbidden):  # staff answer requests, they do not open them
        await core.support.open(tree.actors[Role.STAFF], draft(tree))

    await core.document(DocumentKind.CERTIFICATE, tree.own, tree.product)
    issue = await core.support.open(user, draft(tree))
    assert issue.subject == "Cannot connect" and issue.level == "premium"
    assert issue.first_response_due == issue.created_at + timedelta(hours=4)
    assert issue.resolution_due == issue.created_at + timedelta(days=2)
    assert issue.status is IssueStatus.NEW and issue.number.startswith("SR-2026-")
    assert issue.delivery is Delivery.DELIVERED  # the portal is the helpdesk
    [opened] = [e for e in core.bus.published if isinstance(e, IssueOpened)]
    assert opened.cabinet_name == "Acme"
    assert core.told(tree.users[Role.STAFF]) == [f"{issue.number}: Cannot connect"]
    assert core.told(tree.users[Role.CUSTOMER_USER]) == []


async def test_customers_see_their_organisations_requests_and_staff_see_all() -> None:
    core = Core()
    tree = await supported(core)
    mine = await core.support.open(tree.actors[Role.CUSTOMER_USER], draft(tree))
    # A request of the child organisation, opened by its own user.
    await core.document(DocumentKind.CERTIFICATE, tree.child, tree.product)
    child_user = await core.users.create_with_password(
        SYSTEM, tree.child.id, "labs@example.test", "Lab", Role.CUSTOMER_USER, "password 123")
    from app.domain.users import Principal
    lab = Principal.of(child_user, tree.child)
    theirs = await core.support.open(lab, draft(tree, subject="Labs problem"))

    async def seen(role: Role, **filters: object) -> list[str]:
        page = await core.support.list_visible(tree.actors[role], IssueFilter(**filters),  # type: ignore[arg-type]
                                               PageRequest())
        return [row.issue.id for row in page.items]

    assert await seen(Role.CUSTOMER_USER) == [mine.id]
    assert await seen(Role.CUSTOMER_ADMIN) == [theirs.id, mine.id]
    assert await seen(Role.STAFF) == [theirs.id, mine.id]
    assert await seen(Role.STAFF, text="labs") == [theirs.id]
    assert await seen(Role.STAFF, text=mine.number) == [mine.id]
    with pytest.raises(NotFound):
        await core.support.get(tree.actors[Role.CUSTOMER_USER], theirs.id)
    with pytest.raises(NotFound):
        await core.support.list_visible(tree.actors[Role.CUSTOMER_USER], IssueFilter(),
                                        PageRequest(), cabinet_id=tree.child.id)
    page = await core.support.list_visible(tree.actors[Role.CUSTOMER_ADMIN], IssueFilter(),
                                           PageRequest(), cabinet_id=tree.child.id)
    assert [row.issue.id for row in page.items] == [theirs.id]
    assert page.items[0].cabinet_name == "Acme Labs" and page.items[0].product_name == "DB Guard"


async def test_customers_close_and_reopen_and_staff_work_the_rest() -> None:
    core = Core()
    tree = await supported(core)
    user, admin = tree.actors[Role.CUSTOMER_USER], tree.actors[Role.CUSTOMER_ADMIN]
    staff = tree.actors[Role.STAFF]
    issue = await core.support.open(user, draft(tree))
    view = await core.support.update(admin, issue.id, IssueChanges(subject="Better subject"))
    assert view.issue.subject == "Better subject"
    with pytest.raises(Forbidden):
        await core.support.update(user, issue.id, IssueChanges(priority=Priority.URGENT))
    with pytest.raises(Invalid):
        await core.support.update(user, issue.id, IssueChanges(status=IssueStatus.RESOLVED))
    with pytest.raises(Invalid):
        await core.support.update(staff, issue.id, IssueChanges(
            assignee_id=tree.users[Role.CUSTOMER_ADMIN].id))
    view = await core.support.update(staff, issue.id, IssueChanges(
        status=IssueStatus.WAITING, priority=Priority.URGENT,
        assignee_id=tree.users[Role.STAFF].id))
    assert (view.issue.status, view.issue.priority, view.assignee_name) == (
        IssueStatus.WAITING, Priority.URGENT, "staff")
    assert core.told(tree.users[Role.CUSTOMER_USER]) == [
        f"{issue.number}: Status Waiting for you, priority Urgent"]
    view = await core.support.update(user, issue.id, IssueChanges(status=IssueStatus.CLOSED))
    assert view.issue.status is IssueStatus.CLOSED and view.issue.resolved_at is not None
    with pytest.raises(Conflict):
        await core.conversation.comment(user, issue.id, "One more thing")
    view = await core.support.update(user, issue.id, IssueChanges(status=IssueStatus.OPEN))
    assert view.issue.resolved_at is None
    updates = [e for e in core.bus.published if isinstance(e, IssueUpdated)]
    assert [(e.by_staff, e.change) for e in updates] == [
        (True, "Status Waiting for you, priority Urgent"), (False, "Status Closed"),
        (False, "Status Open")]


async def test_internal_notes_reach_no_customer_and_replies_are_answers() -> None:
    core = Core()
    tree = await supported(core)
    user, staff = tree.actors[Role.CUSTOMER_USER], tree.actors[Role.STAFF]
    issue = await core.support.open(user, draft(tree))
    with pytest.raises(Forbidden):
        await core.conversation.comment(user, issue.id, "secret?", public=False)
    await core.conversation.comment(staff, issue.id, "Customer looks confused.", public=False)
    core.clock.advance(hours=1)
    answer = await core.conversation.comment(staff, issue.id, "Try restarting the agent.")
    assert [c.body for c in await core.conversation.comments(user, issue.id)] == [
        "Try restarting the agent."]
    assert len(await core.conversation.comments(staff, issue.id)) == 2
    view = await core.support.get(user, issue.id)
    assert [c.body for c in view.comments] == ["Try restarting the agent."]
    assert view.issue.answered_in() == timedelta(hours=1) and not view.breached
    assert core.told(tree.users[Role.CUSTOMER_USER]) == [f"{issue.number}: Cannot connect"]
    with pytest.raises(Forbidden):
        await core.conversation.edit_comment(user, issue.id, answer.id, "not mine")
    mine = await core.conversation.comment(user, issue.id, "It works now")
    edited = await core.conversation.edit_comment(user, issue.id, mine.id, "It works now!")
    assert edited.body == "It works now!"
    await core.conversation.delete_comment(user, issue.id, mine.id)
    with pytest.raises(NotFound):
        await core.conversation.delete_comment(user, issue.id, mine.id)
    commented = [e for e in core.bus.published if isinstance(e, IssueCommented)]
    assert [(e.by_staff, e.public) for e in commented] == [(True, False), (True, True),
                                                            (False, True)]


async def test_a_late_first_answer_breaches_the_target() -> None:
    core = Core()
    tree = await supported(core)
    issue = await core.support.open(tree.actors[Role.CUSTOMER_USER], draft(tree))
    core.clock.advance(hours=5)
    assert (await core.support.get(tree.actors[Role.STAFF], issue.id)).breached
    await core.conversation.comment(tree.actors[Role.STAFF], issue.id, "Sorry for the wait.")
    view = await core.support.get(tree.actors[Role.CUSTOMER_USER], issue.id)
    assert view.breached and view.issue.answered_in() == timedelta(hours=5)


async def test_files_are_checked_while_read_and_kept_under_a_key_of_the_portal() -> None:
    core = Core()
    tree = await supported(core)
    user = tree.actors[Role.CUSTOMER_USER]
    issue = await core.support.open(user, draft(tree))
    attachment = await core.conversation.attach(user, issue.id, "../../etc/trace\x01.log",
                                                chunks(b"line\n" * 100))
    assert attachment.filename == "trace.log" and attachment.content_type == "text/plain"
    assert attachment.key == f"issues/{issue.id}/{attachment.id}" and attachment.size == 500
    found, data = await core.conversation.attachment(user, issue.id, attachment.id)
    assert found == attachment
    assert b"".join([c async for c in data]) == b"line\n" * 100
    with pytest.raises(UnsupportedType):
        await core.conversation.attach(user, issue.id, "run.exe", chunks(b"MZ"))
    stored = len(core.objects.objects)
    with pytest.raises(TooLarge):
        await core.conversation.attach(user, issue.id, "big.log", chunks(b"x" * 20_000))
    with pytest.raises(TooLarge):
        await core.conversation.attach(user, issue.id, "big.log", chunks(b""),
                                       declared_size=20_000)
    assert len(core.objects.objects) == stored  # nothing kept of either
    with pytest.raises(Forbidden):
        await core.conversation.delete_attachment(tree.actors[Role.CUSTOMER_ADMIN], issue.id,
                                                  attachment.id)
    await core.conversation.delete_attachment(user, issue.id, attachment.id)
    assert await core.conversation.attachments(user, issue.id) == []
    assert len(core.objects.objects) == stored - 1


async def test_with_an_external_helpdesk_everything_is_delivered_once_through_outages() -> None:
    desk = FakeHelpdesk()
    core = Core(helpdesk=desk)
    tree = await supported(core)
    user = tree.actors[Role.CUSTOMER_USER]
    desk.failures = [HelpdeskUnavailable("502 Bad Gateway")]
    issue = await core.support.open(user, draft(tree))
    assert issue.delivery is Delivery.PENDING and issue.external_id is None
    await core.conversation.comment(user, issue.id, "More details")
    await core.conversation.attach(user, issue.id, "screen.png", chunks(b"\x89PNG" * 10))
    assert (await core.support.get(user, issue.id)).undelivered == 3

    await core.sync.deliver_due()  # the ticket fails; comment and file wait for it
    assert desk.tickets == {}
    core.clock.advance(hours=2)
    await core.sync.measure()  # what operators see meanwhile: all three queued 2 h ago
    assert core.sync.stats() == {"delivered": 0, "failed": 0, "retried": 1, "waiting": 3,
                                 "oldest_age_seconds": 7200}
    for _ in range(3):
        await core.sync.deliver_due()
        core.clock.advance(seconds=5)
    view = await core.support.get(user, issue.id)
    assert view.undelivered == 0 and view.issue.external_id == "T1"
    assert view.issue.delivery is Delivery.DELIVERED
    [ticket] = desk.tickets.values()
    assert [c.body for c in ticket["comments"]] == ["More details"]
    assert desk.files == {f"T1-{view.attachments[0].id}": b"\x89PNG" * 10}
    # A delivery redone after its answer was lost makes nothing twice.
    assert await desk.create_ticket(ticket["draft"]) == "T1"
    await core.sync.measure()
    assert core.sync.stats() == {"delivered": 3, "failed": 0, "retried": 1, "waiting": 0,
                                 "oldest_age_seconds": 0}


async def test_a_refused_delivery_is_shown_to_staff_with_why() -> None:
    desk = FakeHelpdesk()
    core = Core(helpdesk=desk)
    tree = await supported(core)
    desk.failures = [HelpdeskRefused("400 priority: required")]
    issue = await core.support.open(tree.actors[Role.CUSTOMER_USER], draft(tree))
    await core.sync.deliver_due()
    view = await core.support.get(tree.actors[Role.STAFF], issue.id)
    assert view.issue.delivery is Delivery.FAILED
    assert view.issue.delivery_error == "400 priority: required"
    assert core.sync.stats()["failed"] == 1
    [failed] = await core.support.failures(tree.actors[Role.STAFF])
    assert failed.last_error == "400 priority: required"
    with pytest.raises(Forbidden):
        await core.support.failures(tree.actors[Role.CUSTOMER_ADMIN])


async def delivered_request() -> tuple[FakeHelpdesk, Core, Tree, SupportIssue]:
    """A customer's request, delivered to an external helpdesk as its ticket T1."""
    desk = FakeHelpdesk()
    core = Core(helpdesk=desk)
    tree = await supported(core)
    issue = await core.support.open(tree.actors[Role.CUSTOMER_USER], draft(tree))
    await core.sync.deliver_due()
    return desk, core, tree, issue


async def test_what_agents_do_comes_back_once_by_webhook_or_reconciliation() -> None:
    desk, core, tree, issue = await delivered_request()
    user = tree.actors[Role.CUSTOMER_USER]
    desk.reply("T1", "Restart the agent.", files={"fix.txt": b"steps"})
    desk.reply("T1", "Customer is on 2.0", public=False)
    desk.set("T1", status=IssueStatus.WAITING)

    assert await core.sync.reconcile() == 3  # two comments and a status
    assert await core.sync.reconcile() == 0
    body = json.dumps({"ticket": "T1"}).encode()
    assert await core.sync.inbound("hook-secret", {}, body) == 0  # a replay changes nothing
    with pytest.raises(InboundRefused):
        await core.sync.inbound("guess", {}, body)

    view = await core.support.get(user, issue.id)
    assert [c.body for c in view.comments] == ["Restart the agent."]
    assert view.issue.status is IssueStatus.WAITING and view.issue.external_status == \
        "raw waiting_for_customer"
    assert view.issue.first_response_at is not None
    [file] = view.attachments
    _, data = await core.conversation.attachment(user, issue.id, file.id)
    assert file.filename == "fix.txt" and b"".join([c async for c in data]) == b"steps"
    assert core.told(tree.users[Role.CUSTOMER_USER]) == [
        f"{issue.number}: Cannot connect", f"{issue.number}: Status Waiting for you"]

    # The customer answers: the request opens again, and the agent's state does not
    # overwrite the change until it is delivered.
    await core.conversation.comment(user, issue.id, "Done, still broken.")
    assert (await core.support.get(user, issue.id)).issue.status is IssueStatus.OPEN
    await core.sync.refresh(["T1"])
    assert (await core.support.get(user, issue.id)).issue.status is IssueStatus.OPEN


async def test_an_agents_file_not_copied_at_first_is_copied_once_later() -> None:
    desk, core, tree, issue = await delivered_request()
    user = tree.actors[Role.CUSTOMER_USER]
    desk.reply("T1", "Here is the patch.", files={"patch.txt": b"diff"})
    desk.file_failures.append(HelpdeskUnavailable("media server down"))

    assert await core.sync.refresh(["T1"]) == 1  # the words arrive without the file
    view = await core.support.get(user, issue.id)
    assert [c.body for c in view.comments] == ["Here is the patch."] and not view.attachments
    for _ in range(2):
        assert await core.sync.refresh(["T1"]) == 0
    [file] = (await core.support.get(user, issue.id)).attachments
    assert file.filename == "patch.txt" and file.comment_id == view.comments[0].id


async def test_a_ticket_the_helpdesk_no_longer_shows_is_skipped() -> None:
    desk, core, _, _ = await delivered_request()
    desk.failures.append(HelpdeskRefused("404 gone"))
    assert await core.sync.refresh(["T1"]) == 0
