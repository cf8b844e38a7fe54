"""A login page as data: its forms, links and texts, read with BeautifulSoup (the ``html.parser`` tree builder).

The Dex walker needs little from a page: each form's action, method and fields; the links (Dex connectors);
the text of a few elements (Dex's error box, the heading of an error page) and of the page. beautifulsoup4 is the
ecosystem's standard HTML reader, so the page is read with it rather than with a tokenizer of our own. Importing
it costs ~40-75 ms (mostly soupsieve); :func:`parse_page` imports it on its first call, so only a command that
actually reads a login page pays that, once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bs4 import Tag

__all__ = ["Form", "Page", "parse_page"]

# Elements whose text is not page text (as in a browser with scripts on)
_HIDDEN = frozenset({"script", "style", "template", "noscript"})


def _squash(parts: Iterable[str]) -> str:
    """Text pieces joined by single spaces, all whitespace runs squashed (``get_text(" ", strip=True)``, tighter)."""
    return " ".join(" ".join(parts).split())


@dataclass(frozen=True, slots=True)
class Form:
    """One ``<form>``: its action and method as written, and its ``<input>`` fields in order."""

    action: str
    method: str
    """Lower case; ``get`` when not written."""
    inputs: list[dict[str, str]] = field(default_factory=list)
    """The attributes of each ``<input>`` whose nearest enclosing form is this one (valueless attributes: ``""``)."""

    def has_input(self, name: str, value: str | None = None) -> bool:
        return any(i.get("name") == name and (value is None or i.get("value") == value) for i in self.inputs)

    def values(self) -> dict[str, str]:
        """The name -> value of the hidden and text fields (what a browser submits untouched)."""
        return {i["name"]: i.get("value", "") for i in self.inputs
                if i.get("name") and i.get("type", "text").lower() in ("hidden", "text")}


@dataclass(frozen=True, slots=True)
class Page:
    """What :func:`parse_page` read; every list is in document order."""

    forms: list[Form] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    """``(href, text)`` of every ``<a href>``."""
    ids: dict[str, str] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)
    """Text of the first element with each id / class (void elements such as ``<input>`` are not counted)."""
    paragraphs: list[str] = field(default_factory=list)
    text: str = ""

    def by_id(self, element_id: str) -> str | None:
        return self.ids.get(element_id)

    def by_class(self, name: str) -> str | None:
        return self.classes.get(name)

    def message(self) -> str:
        """The first non-empty paragraph, else the start of the page's text."""
        return next((p for p in self.paragraphs if p), self.text[:200])


def _attributes(tag: Tag) -> dict[str, str]:
    return {k: v if isinstance(v, str) else " ".join(v) for k, v in tag.attrs.items()}


def parse_page(html: str) -> Page:
    """Read ``html`` (any markup: unclosed and stray tags are tolerated) into a :class:`Page`."""
    from bs4 import BeautifulSoup  # here, not at the top: commands that never read a login page skip the import
    from bs4.element import NavigableString, PreformattedString

    # multi_valued_attributes=None: class="a b" stays one string, like every other attribute
    soup = BeautifulSoup(html, "html.parser", multi_valued_attributes=None)
    # Only character data is text: not comments, CDATA sections, doctypes, nor the insides of script, style,
    # template and noscript (their tags stay: a form inside <noscript> is still a form)
    for node in list(soup.descendants):
        if isinstance(node, NavigableString) and (isinstance(node, PreformattedString)
                                                  or any(p.name in _HIDDEN for p in node.parents)):
            node.extract()

    def text(tag: Tag) -> str:
        return _squash(s for s in tag.descendants if isinstance(s, NavigableString))

    page = Page(text=text(soup))
    for tag in soup.find_all(True):
        if tag.name == "form":
            inputs = [_attributes(i) for i in tag.find_all("input") if i.find_parent("form") is tag]
            page.forms.append(Form(str(tag.get("action", "")), str(tag.get("method", "get")).lower(), inputs))
        if tag.can_be_empty_element:  # <input>, <img>, <br>...: never hold text
            continue
        is_link = tag.name == "a" and tag.has_attr("href")
        element_id = str(tag.get("id", ""))
        new_id = bool(element_id) and element_id not in page.ids
        new_classes = [name for name in str(tag.get("class", "")).split() if name not in page.classes]
        if not (is_link or tag.name == "p" or new_id or new_classes):
            continue
        content = text(tag)  # once per element, whatever it is recorded as
        if is_link:
            page.links.append((str(tag["href"]), content))
        if tag.name == "p":
            page.paragraphs.append(content)
        if new_id:
            page.ids[element_id] = content
        for name in new_classes:
            page.classes.setdefault(name, content)
    return page
