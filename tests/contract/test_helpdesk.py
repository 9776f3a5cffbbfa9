"""The helpdesk port's contract, held by the portal's own helpdesk and by a real
django-helpdesk: every write made once however often it is asked (an answer can be lost),
statuses and priorities in the portal's words, internal notes marked, changes found after a
cursor, webhooks from elsewhere refused, an unknown ticket refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest

from adapters.builtin_helpdesk import BuiltinHelpdesk
from adapters.django_helpdesk import DjangoHelpdesk
from app.domain.roles import Role
from app.domain.support import IssueChanges, IssueStatus, Priority, SupportIssue
from app.domain.users import Principal
from app.web.app import create_app
from app.web.keys import SERVICES
from ports.helpdesk import (
    CommentDraft,
    FileDraft,
    Helpdesk,
    HelpdeskRefused,
    HelpdeskUnavailable,
    InboundRefused,
    TicketDraft,
)
from tests.helpdesk import SERVICE, DjangoHelpdeskServer
from tests.live import free_port
from tests.world import ClientFactory, SettingsFor, World, build_world

SECRET = "webhook-secret-for-tests"


@dataclass
class Desk:
    helpdesk: Helpdesk
    world: World
    server: DjangoHelpdeskServer | None

    @property
    def staff(self) -> Principal:
        actor = self.world.actors[Role.STAFF]
        return Principal(user_id=actor.user_id, email=actor.email, role=Role.STAFF,
                         cabinet_id=actor.cabinet.id, cabinet_path=actor.cabinet.path)

    async def request(self, priority: Priority = Priority.NORMAL) -> TicketDraft:
        """A request committed in the portal, as its delivery would describe it."""
        issue, _ = await self.world.add_issue(self.world.own)
        if priority is not Priority.NORMAL:
            services = self.world.client.app[SERVICES]
            await services.support.update(self.staff, issue.id, IssueChanges(priority=priority))
        return draft_of(replace(issue, priority=priority), self.world.own.name)

    async def comment(self, ticket: TicketDraft, body: str, public: bool) -> CommentDraft:
        """A comment written in the portal (the portal's own helpdesk keeps it there)."""
        services = self.world.client.app[SERVICES]
        made = await services.conversation.comment(self.staff, ticket.portal_id, body,
                                                   public=public)
        return CommentDraft(made.id, made.author_name, made.body, made.public)

    async def set_status(self, ticket: TicketDraft, status: IssueStatus) -> TicketDraft:
        services = self.world.client.app[SERVICES]
        await services.support.update(self.staff, ticket.portal_id,
                                      IssueChanges(status=status))
        return replace(ticket, status=status)


def draft_of(issue: SupportIssue, organisation: str) -> TicketDraft:
    return TicketDraft(
        portal_id=issue.id, number=issue.number, subject=issue.subject,
        description=issue.description, status=issue.status, priority=issue.priority,
        submitter_email="user@example.test", organisation=organisation, product="DB Guard",
        level=issue.level, created_at=issue.created_at)


@pytest.fixture(params=["builtin", "django_helpdesk"])
async def desk(request: pytest.FixtureRequest, aiohttp_client: ClientFactory,
               settings_for: SettingsFor) -> AsyncIterator[Desk]:
    world = await build_world(await aiohttp_client(create_app(settings_for("sqlite"))))
    if request.param == "builtin":
        yield Desk(BuiltinHelpdesk(world.client.app[SERVICES].storage), world, None)
        return
    server: DjangoHelpdeskServer = request.getfixturevalue("django_helpdesk")
    adapter = DjangoHelpdesk(server.api, *SERVICE, server.queue, 10, SECRET)
    await adapter.open()
    try:
        yield Desk(adapter, world, server)
    finally:
        await adapter.close()


async def test_a_probe_says_the_helpdesk_answers(desk: Desk) -> None:
    found = await desk.helpdesk.probe()
    assert ("answers" in found) if desk.server else ("portal's own" in found)


async def once(chunks: bytes) -> AsyncIterator[bytes]:
    yield chunks


async def test_a_ticket_is_made_once_however_often_asked(desk: Desk) -> None:
    draft = await desk.request(Priority.HIGH)
    first = await desk.helpdesk.create_ticket(draft)
    assert await desk.helpdesk.create_ticket(draft) == first  # the first answer was lost
    other = await desk.helpdesk.create_ticket(await desk.request())
    assert other != first
    state = await desk.helpdesk.ticket(first)
    assert state.external_id == first
    assert state.means(IssueStatus.NEW) and not state.means(IssueStatus.CLOSED)
    assert state.priority is Priority.HIGH and state.raw_status
    if desk.server is not None:
        assert len(await desk.server.tickets_with(f"Portal ref: {draft.portal_id}")) == 1


async def test_comments_are_added_once_and_internal_notes_stay_marked(desk: Desk) -> None:
    draft = await desk.request()
    ticket = await desk.helpdesk.create_ticket(draft)
    reply = await desk.comment(draft, "Logs attached {{ ticket.secret_key }}", public=True)
    note = await desk.comment(draft, "Customer is on 1.9, careful", public=False)
    made = await desk.helpdesk.add_comment(ticket, reply)
    assert await desk.helpdesk.add_comment(ticket, reply) == made
    await desk.helpdesk.add_comment(ticket, note)
    comments = (await desk.helpdesk.ticket(ticket)).comments
    ours = {c.portal_id: c for c in comments if c.portal_id in (reply.portal_id, note.portal_id)}
    assert [c.portal_id for c in comments].count(reply.portal_id) == 1
    assert ours[reply.portal_id].public and not ours[note.portal_id].public
    # The text arrives as written, never run as a template.
    assert "Logs attached" in ours[reply.portal_id].body
    assert "{{ ticket.secret_key }}" in ours[reply.portal_id].body.replace("\u200b", "")


async def test_a_file_is_attached_once(desk: Desk) -> None:
    draft = await desk.request()
    ticket = await desk.helpdesk.create_ticket(draft)
    file = FileDraft(str(uuid.uuid4()), "Jane Customer", "trace.log", "text/plain", 11)
    made = await desk.helpdesk.add_file(ticket, file, once(b"hello world"))
    assert await desk.helpdesk.add_file(ticket, file, once(b"hello world")) == made
    if desk.server is not None:
        files = [f for c in (await desk.helpdesk.ticket(ticket)).comments
                 for f in c.attachments]
        assert [(f.filename, f.size) for f in files] == [("trace.log", 11)]
        read = b"".join([chunk async for chunk in desk.helpdesk.file(files[0].external_id)])
        assert read == b"hello world"


@pytest.mark.parametrize("status", list(IssueStatus))
async def test_each_status_reads_back_as_itself(desk: Desk, status: IssueStatus) -> None:
    draft = await desk.request()
    ticket = await desk.helpdesk.create_ticket(draft)
    changed = await desk.set_status(draft, status)
    await desk.helpdesk.update_ticket(ticket, changed)
    state = await desk.helpdesk.ticket(ticket)
    assert state.means(status), (status, state)
    others = [s for s in IssueStatus if s is not status and state.means(s)]
    # Only the helpdesk's one open status may stand for several of the portal's.
    assert not others or not status.done


async def test_an_unknown_ticket_is_refused(desk: Desk) -> None:
    with pytest.raises(HelpdeskRefused):
        await desk.helpdesk.ticket("987654321")


async def test_changes_are_found_after_the_cursor(desk: Desk) -> None:
    draft = await desk.request()
    ticket = await desk.helpdesk.create_ticket(draft)
    _, cursor = await desk.helpdesk.changed(None)
    if desk.server is not None:
        await desk.server.reply(ticket, "Please try 2.0.1.")
    changed, after = await desk.helpdesk.changed(cursor)
    assert changed == ([ticket] if desk.helpdesk.external else [])
    assert (await desk.helpdesk.changed(after))[0] == []  # nothing since


async def test_a_webhook_call_that_is_not_the_helpdesks_is_refused(desk: Desk) -> None:
    body = b'{"ticket": {"id": 5}, "followup_id": 9}'
    for secret in (None, "", "guess", SECRET[:-1]):
        with pytest.raises(InboundRefused):
            desk.helpdesk.inbound(secret, {}, body)
    if desk.helpdesk.external:
        assert desk.helpdesk.inbound(SECRET, {}, body) == ["5"]
        with pytest.raises(InboundRefused):
            desk.helpdesk.inbound(SECRET, {}, b"not json")


async def test_an_unreachable_django_helpdesk_is_unavailable_not_refused() -> None:
    # Only an external helpdesk can be away; the portal's own is where its record is.
    adapter = DjangoHelpdesk(f"http://127.0.0.1:{free_port()}/api/", *SERVICE, 1, 2, SECRET)
    await adapter.open()
    try:
        with pytest.raises(HelpdeskUnavailable):
            await adapter.ticket("1")
        with pytest.raises(HelpdeskUnavailable):
            await adapter.changed("3")
        with pytest.raises(HelpdeskUnavailable):  # what `portal check` says
            await adapter.probe()
    finally:
        await adapter.close()


async def test_a_staff_account_is_needed(django_helpdesk: DjangoHelpdeskServer) -> None:
    adapter = DjangoHelpdesk(django_helpdesk.api, SERVICE[0], "wrong password", 1, 5, SECRET)
    await adapter.open()
    try:
        with pytest.raises(HelpdeskRefused, match=r"401|403"):
            await adapter.changed(None)
        with pytest.raises(HelpdeskRefused, match=r"401|403"):
            await adapter.probe()
    finally:
        await adapter.close()

