"""Jinja filters: text into HTML safely, and dates and times in the portal's one format."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import markupsafe
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

# CommonMark without raw HTML: release notes come from files in the object store, so a
# <script> in them stays text. markdown-it also refuses javascript:, vbscript: and data:
# links. Links open outside the portal with no referrer.
_MARKDOWN = MarkdownIt("js-default").enable("table")


def _link_open(renderer: Any, tokens: Sequence[Token], idx: int, options: OptionsDict,
               env: EnvType) -> str:
    tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
    tokens[idx].attrSet("target", "_blank")
    return str(renderer.renderToken(tokens, idx, options, env))


_MARKDOWN.add_render_rule("link_open", _link_open)


def markdown(text: str | None) -> markupsafe.Markup:
    return markupsafe.Markup(_MARKDOWN.render(text or ""))  # noqa: S704 - html is off


def code_spans(text: str) -> markupsafe.Markup:
    """Escape text and show its `backticked` parts as code (OpenAPI descriptions)."""
    escaped = str(markupsafe.escape(text))
    return markupsafe.Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped))  # noqa: S704


def day(value: date | datetime | None) -> str:
    """The one way the portal writes a date: 6 Dec 2026."""
    return f"{value.day} {value:%b %Y}" if value is not None else ""


def moment(value: datetime | None) -> str:
    """The one way the portal writes a time, with its zone (stored times are UTC):
    6 Dec 2026, 14:05 UTC."""
    return f"{day(value)}, {value:%H:%M} UTC" if value is not None else ""
