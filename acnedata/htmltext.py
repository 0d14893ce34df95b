"""HTML fragments (Commons extmetadata, Openverse fields, web pages) as the text a browser shows."""

from __future__ import annotations

import re
from typing import Any

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

# Elements a browser lays out as blocks (a line of their own) or never renders. Inline elements
# (a, span, b, bdi, …) add nothing between their text and the text around them, which is why
# "at <a>Italian Wikipedia</a>." must not become "Italian Wikipedia ." (get_text(" ") did that).
# html-text and inscriptis were measured against the same cases: the first keeps display:none
# text, the second puts a space before a comma that follows a hidden span.
_BLOCK = frozenset({
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div", "dl",
    "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
    "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody",
    "td", "tfoot", "th", "thead", "tr", "ul",
})  # fmt: skip
_NEVER_SHOWN = frozenset({"script", "style", "template", "noscript", "head", "title", "meta",
                          "link", "iframe"})  # fmt: skip
_HIDDEN_STYLE = re.compile(r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*hidden)\b", re.I)
_SKIPPED_STRINGS = (Comment, Declaration, Doctype, ProcessingInstruction)


def html_to_text(value: Any) -> str:
    """`value` (an HTML fragment, or None) as one line of plain text: no markup, nothing that
    display:none, `hidden` or a script/style element keeps off the screen, whitespace collapsed."""
    if value is None:
        return ""
    return element_text(BeautifulSoup(str(value), "html.parser"))


def element_text(tag: Tag | None) -> str:
    """The visible text of a parsed element, on one line."""
    if tag is None:
        return ""
    parts: list[str] = []
    _walk(tag, parts)
    return " ".join("".join(parts).split())


def _walk(tag: Tag, parts: list[str]) -> None:
    for child in tag.children:
        if isinstance(child, NavigableString):
            if not isinstance(child, _SKIPPED_STRINGS):
                parts.append(str(child))
        elif isinstance(child, Tag) and _shown(child):
            block = child.name in _BLOCK
            if block:
                parts.append(" ")
            _walk(child, parts)
            if block:
                parts.append(" ")


def _shown(tag: Tag) -> bool:
    if tag.name in _NEVER_SHOWN or tag.has_attr("hidden"):
        return False
    style = tag.get("style")
    return not (isinstance(style, str) and _HIDDEN_STYLE.search(style))
