"""django-helpdesk (2.6) as the helpdesk, through its REST API with one staff account.

What the API lacks, and how this adapter makes up for it:
- No idempotency: every ticket and follow-up this adapter writes ends with a line naming the
  portal's id (`Portal ref: <id>`), and each write first looks for it. A ticket is looked
  for among the tickets made since its request was committed here (newest first, with an
  hour's room for clocks apart), a follow-up in its ticket.
- No "changed since": reconciliation reads the follow-ups (every change an agent makes in
  its pages writes one) with an id above the cursor, newest first.
- Traps measured: a follow-up's `title` becomes the ticket's title (this adapter sends
  none); `public` defaults to false (always sent); a follow-up on a resolved ticket
  overwrites its `resolution` (put back); `{{ ... }}` in a comment is rendered as a
  template (broken up with an invisible character); attachment links are plain media URLs
  without access control (the portal copies the bytes, fetched only from the helpdesk's
  own address).
- `resolution` and internal follow-ups never leave this module marked public.
"""

from __future__ import annotations

import hmac
import json
import math
import re
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp import payload as aiohttp_payload

from app.domain.support import ExternalComment, ExternalFile, IssueStatus, Priority, TicketState
from ports.helpdesk import (
    CommentDraft,
    FileDraft,
    HelpdeskRefused,
    HelpdeskUnavailable,
    InboundRefused,
    TicketDraft,
)

OPEN, REOPENED, RESOLVED, CLOSED, DUPLICATE = 1, 2, 3, 4, 5
_RAW = {OPEN: "Open", REOPENED: "Reopened", RESOLVED: "Resolved", CLOSED: "Closed",
        DUPLICATE: "Duplicate"}
_TO_HELPDESK = {IssueStatus.NEW: OPEN, IssueStatus.OPEN: OPEN, IssueStatus.WAITING: OPEN,
                IssueStatus.ON_HOLD: OPEN, IssueStatus.RESOLVED: RESOLVED,
                IssueStatus.CLOSED: CLOSED}
# Its one open status is three of the portal's.
_STILL_OPEN = frozenset({IssueStatus.NEW, IssueStatus.OPEN, IssueStatus.WAITING})
_PRIORITY_OUT = {Priority.URGENT: 1, Priority.HIGH: 2, Priority.NORMAL: 3, Priority.LOW: 4}
_PRIORITY_IN = {1: Priority.URGENT, 2: Priority.HIGH, 3: Priority.NORMAL, 4: Priority.LOW,
                5: Priority.LOW}
_REF = re.compile(r"Portal ref: ([0-9A-Za-z-]{8,64})\s*$")
PAGE = 50
# How far apart the two clocks may be when looking for a ticket an earlier try made.
CLOCK_ROOM = timedelta(hours=1)
AGENT = "Support"


def status_in(code: int, on_hold: bool) -> tuple[IssueStatus, frozenset[IssueStatus], str]:
    """The portal's status for the helpdesk's, the others it stands for, and its own word."""
    raw = _RAW.get(code, str(code)) + (" (on hold)" if on_hold else "")
    if code in (RESOLVED,):
        return IssueStatus.RESOLVED, frozenset(), raw
    if code in (CLOSED, DUPLICATE):
        return IssueStatus.CLOSED, frozenset(), raw
    if on_hold:
        return IssueStatus.ON_HOLD, frozenset(), raw
    return IssueStatus.OPEN, _STILL_OPEN, raw


def portal_ref(text: str) -> str | None:
    found = _REF.search(text.rstrip())
    return found.group(1) if found else None


def _inert(text: str) -> str:
    """Its comments go through Django's template engine: `{{` must not read as a tag."""
    return text.replace("{{", "{\u200b{").replace("{#", "{\u200b#")


class _SizedStream(aiohttp_payload.Payload):
    """A file's chunks with their size known, so the request has a Content-Length (Django's
    development server reads no chunked body)."""

    def __init__(self, chunks: AsyncIterable[bytes], size: int, **kwargs: Any) -> None:
        super().__init__(chunks, **kwargs)
        self._size = size

    async def write(self, writer: Any) -> None:
        async for chunk in self._value:
            await writer.write(chunk)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a file's stream is not text")


class DjangoHelpdesk:
    def __init__(self, url: str, username: str, password: str, queue: int,
                 timeout_seconds: float, webhook_secret: str) -> None:
        self._base = url if url.endswith("/") else url + "/"
        self._origin = urlsplit(self._base)[:2]
        self._auth = {"Authorization": aiohttp.encode_basic_auth(username, password)}
        self._queue = queue
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._webhook_secret = webhook_secret
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(headers=self._auth, timeout=self._timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def name(self) -> str:
        return "django_helpdesk"

    @property
    def external(self) -> bool:
        return True

    # ---- out

    async def create_ticket(self, draft: TicketDraft) -> str:
        found = await self._find_ticket(draft.portal_id, draft.created_at)
        if found is not None:
            return found
        made = await self._call("POST", "tickets/", json={
            "queue": self._queue, "title": draft.subject,
            "description": self._description(draft),
            "priority": _PRIORITY_OUT[draft.priority], "status": OPEN})
        return str(made["id"])

    async def update_ticket(self, external_id: str, draft: TicketDraft) -> None:
        await self._call("PATCH", f"tickets/{_id(external_id)}/", json={
            "title": draft.subject, "description": self._description(draft),
            "priority": _PRIORITY_OUT[draft.priority],
            "status": _TO_HELPDESK[draft.status],
            "on_hold": draft.status is IssueStatus.ON_HOLD})

    async def add_comment(self, external_id: str, comment: CommentDraft) -> str:
        ticket = await self._ticket(external_id)
        if (found := _followup_of(ticket, comment.portal_id)) is not None:
            return found
        text = (f"{_inert(comment.body)}\n\n— {comment.author_name}, in the customer portal\n"
                f"Portal ref: {comment.portal_id}")
        made = await self._call("POST", "followups/", json={
            "ticket": ticket["id"], "comment": text, "public": comment.public})
        await self._keep_resolution(ticket)
        return str(made["id"])

    async def add_file(self, external_id: str, file: FileDraft,
                       chunks: AsyncIterable[bytes]) -> str:
        ticket = await self._ticket(external_id)
        if (found := _followup_of(ticket, file.portal_id)) is not None:
            return found
        form = aiohttp.FormData()
        form.add_field("ticket", str(ticket["id"]))
        form.add_field("public", "true")
        form.add_field("comment", f"{file.author_name} attached {file.filename} in the "
                                  f"customer portal.\nPortal ref: {file.portal_id}")
        form.add_field("attachments", _SizedStream(chunks, file.size,
                                                   content_type=file.content_type),
                       filename=file.filename, content_type=file.content_type)
        made = await self._call("POST", "followups/", data=form)
        await self._keep_resolution(ticket)
        return str(made["id"])

    # ---- in

    async def ticket(self, external_id: str) -> TicketState:
        ticket = await self._ticket(external_id)
        status, covers, raw = status_in(int(ticket["status"]), bool(ticket.get("on_hold")))
        comments = []
        for followup in ticket.get("followup_set") or []:
            body = (followup.get("comment") or "").strip()
            files = tuple(
                ExternalFile(external_id=str(a["id"]), filename=str(a.get("filename") or ""),
                             content_type=str(a.get("mime_type") or ""),
                             size=int(a.get("size") or 0))
                for a in followup.get("followupattachment_set") or [])
            if not body and not files:
                continue  # a change of status or owner only: the ticket says it
            comments.append(ExternalComment(
                external_id=str(followup["id"]), author_name=AGENT, body=body,
                public=bool(followup.get("public")), at=_when(followup.get("date")),
                portal_id=portal_ref(body), attachments=files))
        return TicketState(external_id=str(ticket["id"]), status=status, raw_status=raw,
                           priority=_PRIORITY_IN.get(int(ticket.get("priority") or 3)),
                           comments=comments, covers=covers)

    async def probe(self) -> str:
        await self._call("GET", "followups/", params={"page_size": 1})
        return f"django-helpdesk at {self._base} answers (queue {self._queue})"

    async def changed(self, cursor: str | None) -> tuple[list[str], str | None]:
        """Tickets with a follow-up above the cursor (the highest follow-up id seen)."""
        since = int(cursor) if cursor and cursor.isdigit() else None
        count = int((await self._call("GET", "followups/", params={"page_size": 1}))["count"])
        tickets: dict[str, None] = {}
        highest = since or 0
        for page in range(math.ceil(count / PAGE), 0, -1):
            listed = (await self._call("GET", "followups/", params={
                "page_size": PAGE, "page": page}))["results"]
            ids = [int(f["id"]) for f in listed]
            highest = max([highest, *ids])
            if since is None:
                break  # the first time: from now on
            for followup in listed:
                if int(followup["id"]) > since:
                    tickets[str(followup["ticket"])] = None
            if min(ids, default=0) <= since:
                break
        return list(tickets), str(highest)

    async def file(self, file_id: str) -> AsyncIterator[bytes]:
        found = await self._call("GET", f"followups-attachments/{_id(file_id)}/")
        url = urljoin(self._base, str(found.get("file") or ""))
        if urlsplit(url)[:2] != self._origin:
            raise HelpdeskRefused(f"file {file_id} is not on the helpdesk's own address")
        session = self._open_session()
        try:
            async with session.get(url) as response:
                if response.status != 200:
                    raise _refusal(response.status, f"file {file_id}")
                async for chunk in response.content.iter_chunked(256 * 1024):
                    yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HelpdeskUnavailable(f"django-helpdesk: {exc or type(exc).__name__}") \
                from exc

    def inbound(self, secret: str | None, headers: Mapping[str, str],
                body: bytes) -> list[str]:
        if not self._webhook_secret or secret is None or not hmac.compare_digest(
                secret.encode(), self._webhook_secret.encode()):
            raise InboundRefused("not the helpdesk's webhook address")
        try:
            ticket = json.loads(body)["ticket"]["id"]
        except (ValueError, KeyError, TypeError):
            raise InboundRefused("not a django-helpdesk webhook body") from None
        return [str(ticket)]

    # ---- parts

    def _description(self, draft: TicketDraft) -> str:
        return (f"{draft.description}\n\n— Opened in the customer portal as "
                f"{draft.number} by {draft.submitter_email or 'a customer'} of "
                f"{draft.organisation}; {draft.product}, {draft.level} support.\n"
                f"Portal ref: {draft.portal_id}")

    async def _ticket(self, external_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self._call("GET", f"tickets/{_id(external_id)}/")
        return found

    async def _find_ticket(self, portal_id: str, created_at: datetime) -> str | None:
        """A ticket an earlier try made (its answer lost): among those made since."""
        count = int((await self._call("GET", "tickets/", params={"page_size": 1}))["count"])
        oldest = created_at - CLOCK_ROOM
        for page in range(math.ceil(count / PAGE), 0, -1):
            listed = (await self._call("GET", "tickets/", params={
                "page_size": PAGE, "page": page}))["results"]
            for ticket in reversed(listed):
                if portal_ref(str(ticket.get("description") or "")) == portal_id:
                    return str(ticket["id"])
            opened = [_when(t["followup_set"][0].get("date")) for t in listed
                      if t.get("followup_set")]
            if opened and min(opened) < oldest:
                return None
        return None

    async def _keep_resolution(self, before: dict[str, Any]) -> None:
        """A follow-up on a resolved ticket overwrites its resolution: put it back."""
        if int(before["status"]) in (RESOLVED, CLOSED):
            await self._call("PATCH", f"tickets/{before['id']}/",
                             json={"resolution": before.get("resolution")})

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise HelpdeskUnavailable("the django-helpdesk client is not open")
        return self._session

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        session = self._open_session()
        try:
            async with session.request(method, self._base + path, **kwargs) as response:
                if response.status >= 300:
                    text = (await response.text(errors="replace"))[:300]
                    raise _refusal(response.status, f"{method} {path}: {text}")
                return await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HelpdeskUnavailable(
                f"django-helpdesk {method} {path}: {exc or type(exc).__name__}") from exc
        except ValueError as exc:  # not JSON: a proxy's error page, most likely
            raise HelpdeskUnavailable(f"django-helpdesk {method} {path}: {exc}") from exc


def _refusal(status: int, what: str) -> HelpdeskRefused | HelpdeskUnavailable:
    if status in (408, 425, 429) or status >= 500:
        return HelpdeskUnavailable(f"django-helpdesk answered {status} to {what}")
    return HelpdeskRefused(f"django-helpdesk answered {status} to {what}")


def _followup_of(ticket: dict[str, Any], portal_id: str) -> str | None:
    for followup in ticket.get("followup_set") or []:
        if portal_ref(str(followup.get("comment") or "")) == portal_id:
            return str(followup["id"])
    return None


def _id(external_id: str) -> int:
    if not external_id.isdigit():
        raise HelpdeskRefused(f"{external_id!r} is not a django-helpdesk id")
    return int(external_id)


def _when(value: Any) -> datetime:
    try:
        found = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return found if found.tzinfo else found.replace(tzinfo=UTC)
