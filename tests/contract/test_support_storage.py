"""The storage port's support repositories, on both adapters: requests under the access
rule's scope, their conversation and files, and the delivery queue."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from app.domain.access import Scope
from app.domain.cabinets import Cabinet
from app.domain.licensing import Certificate, DocumentKind
from app.domain.paging import PageRequest
from app.domain.support import (
    Attachment,
    Comment,
    Delivery,
    DeliveryKind,
    IssueFilter,
    IssueStatus,
    Priority,
    SupportDelivery,
    SupportIssue,
    number_for,
)
from app.domain.users import User
from ports.storage import DuplicateKey, UnitOfWork
from tests.contract.test_storage import (
    EVERYTHING,
    IDS,
    SECOND,
    T0,
    Adapter,
    add_all,
    add_documents,
    catalogue,
    new_cabinet,
    new_document,
    new_user,
    storage,
    unique,
)

__all__ = ["storage"]  # the fixture, shared with test_storage
_SERIALS = iter(range(1, 10**6))


async def setting(storage: Adapter) -> tuple[Cabinet, Cabinet, User, Certificate]:
    """A customer with a child, a user of the customer, and a certificate of it."""
    product = await catalogue(storage)
    root = new_cabinet()
    child = new_cabinet(root)
    user = new_user(root)
    await add_all(storage, root, child, user)
    certificate = new_document(DocumentKind.CERTIFICATE, root, product)
    await add_documents(storage, certificate)
    return root, child, user, certificate


def new_issue(cabinet: Cabinet, author: User, certificate: Certificate, *,
              subject: str | None = None, status: IssueStatus = IssueStatus.NEW,
              at: object = T0) -> SupportIssue:
    return SupportIssue(
        id=IDS.new_id(), number=number_for(2031, next(_SERIALS)),
        cabinet_id=cabinet.id, author_id=author.id, author_name=author.name,
        product_id=certificate.product_id, certificate_id=certificate.id, level="premium",
        license_id=None, subject=subject or unique("Cannot connect"),
        description="Since Monday ünïcode «works» no more.", status=status,
        priority=Priority.HIGH, assignee_id=None, created_at=T0, updated_at=T0,
        first_response_due=T0 + timedelta(hours=4), resolution_due=T0 + timedelta(days=2))


async def listed(uow: UnitOfWork, scope: Scope, filters: IssueFilter,
                 page: PageRequest) -> list[SupportIssue]:
    return [found.issue for found in await uow.support.list_visible(scope, filters, page)]


async def add_issues(storage: Adapter, *issues: SupportIssue) -> None:
    async with storage.unit_of_work() as uow:
        for issue in issues:
            await uow.support.add(issue)
        await uow.commit()


async def test_a_request_round_trips_with_every_field(storage: Adapter) -> None:
    root, _, user, certificate = await setting(storage)
    issue = new_issue(root, user, certificate)
    await add_issues(storage, issue)
    async with storage.unit_of_work() as uow:
        assert await uow.support.get(issue.id, EVERYTHING) == issue
        with pytest.raises(DuplicateKey) as taken:
            await uow.support.add(replace(issue, id=IDS.new_id()))
        assert taken.value.key == "support_issues.number"
    changed = replace(issue, status=IssueStatus.WAITING, priority=Priority.URGENT,
                      assignee_id=user.id, updated_at=T0 + SECOND,
                      first_response_at=T0 + SECOND, resolved_at=T0 + 2 * SECOND,
                      external_id=unique("ticket"), external_status="Open",
                      delivery=Delivery.DELIVERED, delivery_error=None, subject="New subject")
    async with storage.unit_of_work() as uow:
        await uow.support.update(changed)
        await uow.commit()
    async with storage.unit_of_work() as uow:
        stored = await uow.support.get(issue.id, EVERYTHING, for_update=True)
        assert stored == changed and stored is not None
        assert type(stored.status) is IssueStatus and stored.first_response_at is not None
        assert stored.first_response_at.utcoffset() is not None
        assert await uow.support.get_by_external_id(changed.external_id or "") == changed
        assert await uow.support.number_taken(issue.number)
        assert not await uow.support.number_taken(number_for(1999, 1))


async def test_requests_are_read_under_the_scope_of_their_organisation(
        storage: Adapter) -> None:
    root, child, user, certificate = await setting(storage)
    mine, below = new_issue(root, user, certificate), new_issue(child, user, certificate)
    await add_issues(storage, mine, below)
    async with storage.unit_of_work() as uow:
        async def ids(scope: Scope) -> set[str]:
            found = await listed(uow, scope, IssueFilter(), PageRequest(50))
            return {i.id for i in found} & {mine.id, below.id}

        assert await ids(Scope.subtree(root.path)) == {mine.id, below.id}
        assert await ids(Scope.cabinet(root.path)) == {mine.id}
        assert await ids(Scope.cabinet(child.path)) == {below.id}
        assert await ids(Scope.subtree(new_cabinet().path)) == set()
        assert await uow.support.get(below.id, Scope.cabinet(root.path)) is None
        assert await uow.support.get(below.id, Scope.subtree(root.path)) is not None


async def test_lists_are_newest_first_filtered_searched_and_paged(storage: Adapter) -> None:
    root, _, user, certificate = await setting(storage)
    issues = [new_issue(root, user, certificate, subject=f"Disk 100%_full {n}",
                        status=IssueStatus.RESOLVED if n % 2 else IssueStatus.OPEN)
              for n in range(5)]
    await add_issues(storage, *issues)
    scope = Scope.cabinet(root.path)
    async with storage.unit_of_work() as uow:
        first = await listed(uow, scope, IssueFilter(), PageRequest(2))
        rest = await listed(uow, scope, IssueFilter(),
                                              PageRequest(10, first[1].id))
        assert [i.id for i in first[:2] + rest] == [i.id for i in reversed(issues)]
        resolved = await listed(uow,
            scope, IssueFilter(status=IssueStatus.RESOLVED), PageRequest(10))
        assert [i.id for i in resolved] == [issues[3].id, issues[1].id]
        searched = await listed(uow,
            scope, IssueFilter(text="100%_FULL 2"), PageRequest(10))
        assert [i.id for i in searched] == [issues[2].id]
        wildcard = await listed(uow, scope, IssueFilter(text="100__"),
                                                  PageRequest(10))
        assert wildcard == []  # % and _ are literal
        by_number = await listed(uow,
            scope, IssueFilter(text=issues[4].number.lower()), PageRequest(10))
        assert [i.id for i in by_number] == [issues[4].id]
        other = await listed(uow,
            scope, IssueFilter(product_id=IDS.new_id()), PageRequest(10))
        assert other == []
        active = await listed(uow, scope, IssueFilter(active=True), PageRequest(10))
        [named] = await uow.support.list_visible(scope, IssueFilter(text=issues[0].number),
                                                 PageRequest(10))
        product = await uow.products.get(issues[0].product_id)
        assert product is not None
        assert (named.product_name, named.cabinet_name) == (product.name, root.name)
        assert [i.id for i in active] == [issues[4].id, issues[2].id, issues[0].id]


async def test_the_queue_filters_by_assignee(storage: Adapter) -> None:
    root, _, user, certificate = await setting(storage)
    mine = replace(new_issue(root, user, certificate), assignee_id=user.id)
    nobodys = new_issue(root, user, certificate)
    await add_issues(storage, mine, nobodys)
    scope = Scope.cabinet(root.path)
    async with storage.unit_of_work() as uow:
        assigned = await listed(uow,
            scope, IssueFilter(assignee_id=user.id), PageRequest(10))
        unassigned = await listed(uow,
            scope, IssueFilter(unassigned=True), PageRequest(10))
    assert [i.id for i in assigned] == [mine.id]
    assert [i.id for i in unassigned] == [nobodys.id]


async def test_only_requests_in_the_helpdesk_and_not_closed_are_reconciled(
        storage: Adapter) -> None:
    root, _, user, certificate = await setting(storage)
    open_one = replace(new_issue(root, user, certificate), external_id=unique("t"))
    closed = replace(new_issue(root, user, certificate), external_id=unique("t"),
                     status=IssueStatus.CLOSED)
    local = new_issue(root, user, certificate)
    await add_issues(storage, open_one, closed, local)
    async with storage.unit_of_work() as uow:
        found: list[str] = []
        after = None
        while batch := await uow.support.open_in_helpdesk(after, 100):
            found += [i.id for i in batch]
            after = batch[-1].id
    assert open_one.id in found and closed.id not in found and local.id not in found


async def test_comments_hide_internal_notes_and_the_deleted(storage: Adapter) -> None:
    root, _, user, certificate = await setting(storage)
    issue = new_issue(root, user, certificate)
    await add_issues(storage, issue)

    def comment(n: int, public: bool = True) -> Comment:
        return Comment(id=IDS.new_id(), issue_id=issue.id, author_id=user.id,
                       author_name=user.name, by_staff=not public, body=f"Comment {n} ✓",
                       public=public, created_at=T0 + n * SECOND, updated_at=T0 + n * SECOND)

    first, note, last = comment(1), comment(2, public=False), comment(3)
    async with storage.unit_of_work() as uow:
        for c in (last, first, note):
            await uow.support.add_comment(c)
        await uow.commit()
    agent = replace(last, body="edited", updated_at=T0 + 9 * SECOND, external_id="fu-7",
                    delivery=Delivery.DELIVERED)
    async with storage.unit_of_work() as uow:
        assert await uow.support.comments(issue.id, internal=False) == [first, last]
        assert await uow.support.comments(issue.id, internal=True) == [first, note, last]
        await uow.support.update_comment(agent)
        await uow.support.update_comment(replace(first, deleted_at=T0 + SECOND))
        await uow.commit()
    async with storage.unit_of_work() as uow:
        assert await uow.support.comments(issue.id, internal=False) == [agent]
        assert await uow.support.get_comment(issue.id, first.id) is None
        assert await uow.support.get_comment(IDS.new_id(), agent.id) is None
        assert await uow.support.comment_by_external_id(issue.id, "fu-7") == agent
        assert await uow.support.comment_by_external_id(issue.id, "fu-8") is None


async def test_attachments_keep_where_their_bytes_are(storage: Adapter) -> None:
    root, _, user, certificate = await setting(storage)
    issue = new_issue(root, user, certificate)
    await add_issues(storage, issue)
    attachment = Attachment(
        id=IDS.new_id(), issue_id=issue.id, comment_id=None, uploader_id=user.id,
        by_staff=False, filename="trace (1).log", content_type="text/plain", size=5 * 2**30,
        sha256="ab" * 32, bucket="support", key=f"issues/{issue.id}/x", created_at=T0)
    async with storage.unit_of_work() as uow:
        await uow.support.add_attachment(attachment)
        await uow.commit()
    async with storage.unit_of_work() as uow:
        assert await uow.support.get_attachment(issue.id, attachment.id) == attachment
        assert await uow.support.attachments(issue.id) == [attachment]
        gone = replace(attachment, deleted_at=T0 + SECOND, external_id="att-1")
        await uow.support.update_attachment(gone)
        await uow.commit()
    async with storage.unit_of_work() as uow:
        assert await uow.support.attachments(issue.id) == []
        assert await uow.support.get_attachment(issue.id, attachment.id) is None
        assert await uow.support.attachment_by_external_id(issue.id, "att-1") == gone


async def test_deliveries_are_leased_retried_and_given_up(storage: Adapter) -> None:
    root, _, user, certificate = await setting(storage)
    issue = new_issue(root, user, certificate)
    await add_issues(storage, issue)
    base = T0 - timedelta(days=20_000)  # before every other test's: only ours are due
    first, second = (SupportDelivery(id=IDS.new_id(), issue_id=issue.id, kind=kind,
                                     object_id=issue.id, created_at=base,
                                     next_attempt_at=base + n * SECOND)
                     for n, kind in enumerate((DeliveryKind.TICKET, DeliveryKind.UPDATE)))
    async with storage.unit_of_work() as uow:
        await uow.support_deliveries.queue(first)
        await uow.support_deliveries.queue(second)
        await uow.commit()
    now = base + 10 * SECOND
    async with storage.unit_of_work() as uow:
        claimed = await uow.support_deliveries.claim(now, now + timedelta(minutes=5), 10)
        await uow.commit()
    assert [d.id for d in claimed] == [first.id, second.id] and claimed[0] == first
    async with storage.unit_of_work() as uow:
        assert await uow.support_deliveries.claim(now, now + SECOND, 10) == []  # leased
        assert await uow.support_deliveries.pending_for(issue.id) == 2
        await uow.support_deliveries.done(first.id)
        await uow.support_deliveries.retry_later(second.id, 1, now + SECOND, "502")
        await uow.commit()
    later = now + 2 * SECOND
    async with storage.unit_of_work() as uow:
        [again] = await uow.support_deliveries.claim(later, later + SECOND, 10)
        assert (again.id, again.attempts, again.last_error) == (second.id, 1, "502")
        await uow.support_deliveries.give_up(second.id, 2, "401 Unauthorized")
        await uow.commit()
    async with storage.unit_of_work() as uow:
        assert await uow.support_deliveries.pending_for(issue.id) == 0
        failed = await uow.support_deliveries.failed(1000)
        [gave_up] = [d for d in failed if d.id == second.id]
        assert (gave_up.status, gave_up.attempts, gave_up.last_error) == (
            Delivery.FAILED, 2, "401 Unauthorized")


async def test_the_backlog_counts_waiting_deliveries_and_their_oldest_retries_or_not(
        storage: Adapter) -> None:
    root, _, user, certificate = await setting(storage)
    issue = new_issue(root, user, certificate)
    await add_issues(storage, issue)
    async with storage.unit_of_work(read_only=True) as uow:
        before, _ = await uow.support_deliveries.backlog()
    base = T0 - timedelta(days=40_000)  # older than any other test's: ours is the oldest
    deliveries = [SupportDelivery(id=IDS.new_id(), issue_id=issue.id, kind=DeliveryKind.COMMENT,
                                  object_id=IDS.new_id(), created_at=base,
                                  next_attempt_at=base + n * SECOND) for n in range(3)]
    async with storage.unit_of_work() as uow:
        for delivery in deliveries:
            await uow.support_deliveries.queue(delivery)
        await uow.support_deliveries.done(deliveries[0].id)
        await uow.support_deliveries.give_up(deliveries[1].id, 1, "400")
        # Tried and put off: still waiting since it was queued (what an alert watches).
        await uow.support_deliveries.retry_later(deliveries[2].id, 1, base + 3600 * SECOND, "502")
        await uow.commit()
    async with storage.unit_of_work(read_only=True) as uow:
        count, oldest = await uow.support_deliveries.backlog()
    assert count == before + 1 and oldest == base
    async with storage.unit_of_work() as uow:  # nothing of ours left for other tests' workers
        await uow.support_deliveries.done(deliveries[2].id)
        await uow.commit()


@pytest.mark.postgres
@pytest.mark.parametrize("storage", ["postgres"], indirect=True)
async def test_two_workers_never_claim_the_same_delivery(storage: Adapter) -> None:
    root, _, user, certificate = await setting(storage)
    issue = new_issue(root, user, certificate)
    await add_issues(storage, issue)
    base = T0 - timedelta(days=30_000)
    deliveries = [SupportDelivery(id=IDS.new_id(), issue_id=issue.id,
                                  kind=DeliveryKind.COMMENT, object_id=IDS.new_id(),
                                  created_at=base, next_attempt_at=base) for _ in range(20)]
    async with storage.unit_of_work() as uow:
        for delivery in deliveries:
            await uow.support_deliveries.queue(delivery)
        await uow.commit()

    async def worker() -> list[str]:
        got: list[str] = []
        while True:
            async with storage.unit_of_work() as uow:
                claimed = await uow.support_deliveries.claim(base + SECOND,
                                                             base + timedelta(hours=1), 3)
                await asyncio.sleep(0.01)
                await uow.commit()
            mine = [d.id for d in claimed if d.issue_id == issue.id]
            if not claimed:
                return got
            got += mine

    one, two = await asyncio.gather(worker(), worker())
    assert not set(one) & set(two)
    assert sorted(one + two) == sorted(d.id for d in deliveries)


async def test_reconciliation_keeps_a_cursor_per_helpdesk(storage: Adapter) -> None:
    name = unique("helpdesk")
    async with storage.unit_of_work() as uow:
        assert await uow.support_deliveries.cursor(name) is None
        await uow.support_deliveries.set_cursor(name, "41")
        await uow.support_deliveries.set_cursor(name, "42")
        await uow.commit()
    async with storage.unit_of_work() as uow:
        assert await uow.support_deliveries.cursor(name) == "42"
