"""Post HTML (Mastodon's ``content``) to plain text and the links it carries.

Mastodon sends a status as a small, sanitised subset of HTML: ``<p>``,
``<br>``, ``<a>`` and ``<span>``. Paragraphs become a blank line, ``<br>`` a
newline, a link its visible text, entities are unescaped. A long link is
shortened for display with ``<span class="invisible">`` parts; the text keeps
them, so the URL stays whole. Mentions and hashtags are links too, but only
other links are reported in :attr:`HtmlText.links`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

__all__ = ["HtmlText", "html_to_text", "parse_html"]

_BLOCKS = frozenset({"p", "div", "blockquote", "pre", "ul", "ol", "li", "h1", "h2", "h3", "h4",
                     "h5", "h6"})
_SKIP = frozenset({"script", "style", "template"})
_NOT_LINKS = frozenset({"mention", "hashtag", "u-url"})
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANKS = re.compile(r"\n{3,}")


@dataclass(frozen=True, slots=True)
class HtmlText:
    """The readable text of an HTML fragment and the URLs of its plain links."""

    text: str
    links: tuple[str, ...]


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a":
            values = dict(attrs)
            classes = set((values.get("class") or "").split())
            href = values.get("href") or ""
            if (href.startswith(("http://", "https://")) and not classes & _NOT_LINKS
                    and values.get("rel") != "tag"):
                self.links.append(href)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data.replace("\r", "").replace("\n", " "))


def parse_html(html: str) -> HtmlText:
    """Text (paragraphs -> blank line, ``<br>`` -> newline, links -> their text) and links."""
    if "<" not in html and "&" not in html:
        return HtmlText(html.strip(), ())
    parser = _Parser()
    parser.feed(html)
    parser.close()
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(parser.parts).split("\n"))
    text = _BLANKS.sub("\n\n", "\n".join(lines)).strip()
    return HtmlText(text, tuple(dict.fromkeys(parser.links)))


def html_to_text(html: str) -> str:
    """Just the text of :func:`parse_html`."""
    return parse_html(html).text
