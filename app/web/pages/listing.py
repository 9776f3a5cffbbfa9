"""What a list page reads from its URL and offers back: a search, a sort by a column, numbered
pages with the count, the other filters kept. `templates/_lists.html` draws them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import TypeVar
from urllib.parse import urlencode

from aiohttp import web

from app.domain.paging import MAX_SEARCH, HasId, Page, PageRequest, Sort
from app.web.pages.common import PAGE_SIZE

T = TypeVar("T", bound=HasId)
# How many page numbers the pager shows around the current one.
PAGER_REACH = 2


@dataclass(frozen=True)
class Column:
    key: str
    label: str


@dataclass
class Listing:
    """One request's list controls: `q` (search), `sort` (a column key, `-` first for
    descending) and `page` (from 1), with the URL's other parameters kept in every link."""

    path: str
    query: dict[str, str]
    search: str
    sort: Sort
    number: int
    columns: dict[str, Column]
    total: int = 0

    def page_request(self) -> PageRequest:
        return PageRequest.numbered(PAGE_SIZE, self.number, self.sort)

    def url(self, **changes: str | int | None) -> str:
        """This list's URL with some parameters changed (None drops one)."""
        query = {**self.query, **{k: str(v) for k, v in changes.items() if v is not None}}
        for key in [k for k, v in changes.items() if v is None]:
            query.pop(key, None)
        return f"{self.path}?{urlencode(query)}" if query else self.path

    def sort_url(self, key: str) -> str:
        """Sorting by `key`: ascending first, the other way round when it is sorted so."""
        descending = self.sort.key == key and not self.sort.descending
        return self.url(sort=("-" if descending else "") + key, page=None)

    def aria_sort(self, key: str) -> str:
        if self.sort.key != key:
            return "none"
        return "descending" if self.sort.descending else "ascending"

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))

    @property
    def first_row(self) -> int:
        return min((self.number - 1) * PAGE_SIZE + 1, self.total)

    @property
    def last_row(self) -> int:
        return min(self.number * PAGE_SIZE, self.total)

    def nearby(self) -> list[int | None]:
        """Page numbers to offer: the first, the last and those near this one; None where
        a run of pages is left out."""
        shown = sorted({1, self.pages, *range(max(1, self.number - PAGER_REACH),
                                              min(self.pages, self.number + PAGER_REACH) + 1)})
        offered: list[int | None] = []
        previous = 0
        for number in shown:
            if number - previous > 1:
                offered.append(None)
            offered.append(number)
            previous = number
        return offered


def day_or_none(text: str | None) -> date | None:
    """A YYYY-MM-DD from a URL or a form; None when empty or not a date."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def listing(request: web.Request, columns: list[Column], default: str,
            notices: list[str]) -> Listing:
    """The controls the URL asks for. A sort the list does not offer, or a page number that
    is not one, is replaced by the default and said so in `notices`."""
    offered = {column.key: column for column in columns}
    query = {k: v for k, v in request.query.items() if v and k != "cursor"}
    raw_sort = query.get("sort", default)
    sort = Sort(raw_sort.removeprefix("-"), raw_sort.startswith("-"))
    if sort.key not in offered:
        notices.append(f"This list cannot be sorted by “{raw_sort}”; it is sorted by "
                       f"{offered[default.removeprefix('-')].label.lower()}.")
        query.pop("sort")
        sort = Sort(default.removeprefix("-"), default.startswith("-"))
    number = 1
    if "page" in query:
        if query["page"].isdigit() and 1 <= int(query["page"]) <= 1_000_000:
            number = int(query["page"])
        else:
            notices.append(f"“{query.pop('page')}” is not a page number; showing the first page.")
    return Listing(request.path, query, query.get("q", "").strip()[:MAX_SEARCH], sort, number,
                   offered)


async def fetch_page(controls: Listing, notices: list[str],
                     fetch: Callable[[PageRequest], Awaitable[Page[T]]]) -> Page[T]:
    """The numbered page asked for, or the last one when the list ends before it."""
    page = await fetch(controls.page_request())
    controls.total = page.total or 0
    if not page.items and controls.number > controls.pages:
        notices.append(f"There is no page {controls.number}; showing page {controls.pages}, "
                       "the last.")
        controls.number = controls.pages
        controls.query["page"] = str(controls.pages)
        page = await fetch(controls.page_request())
        controls.total = page.total or 0
    return page
