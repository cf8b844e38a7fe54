"""A login page as data: its forms, links and texts, read with the standard library's HTML tokenizer.

The Dex walker needs little from a page: each form's action, method and fields; the links (Dex connectors);
the text of a few elements (Dex's error box, the heading of an error page) and of the page. A single pass of
:class:`html.parser.HTMLParser` gives exactly that. (kfp-ci used BeautifulSoup here; importing it costs 60-75 ms,
most of it soupsieve's CSS grammar, on every login of every CI job: a quarter of a ``kfp-ci deploy``.)
"""

from __future__ import annotations

from html.parser import HTMLParser

__all__ = ["Form", "Page", "parse_page"]

# Elements without an end tag: they never hold text
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                   "track", "wbr"})
_HIDDEN = frozenset({"script", "style", "template", "noscript"})


def _squash(parts: list[str]) -> str:
    """Text pieces joined by single spaces (BeautifulSoup's ``get_text(" ", strip=True)``)."""
    return " ".join(" ".join(parts).split())


class Form:
    """One ``<form>``: its action and method as written, and its ``<input>`` fields in order."""

    def __init__(self, action: str, method: str) -> None:
        self.action = action
        self.method = method
        self.inputs: list[dict[str, str]] = []

    def has_input(self, name: str, value: str | None = None) -> bool:
        return any(i.get("name") == name and (value is None or i.get("value") == value) for i in self.inputs)

    def values(self) -> dict[str, str]:
        """The name -> value of the hidden and text fields (what a browser submits untouched)."""
        return {i["name"]: i.get("value", "") for i in self.inputs
                if i.get("name") and i.get("type", "text").lower() in ("hidden", "text")}


class Page:
    """What :func:`parse_page` read."""

    def __init__(self) -> None:
        self.forms: list[Form] = []
        self.links: list[tuple[str, str]] = []
        """``(href, text)`` of every ``<a href>``."""
        self.ids: dict[str, str] = {}
        self.classes: dict[str, str] = {}
        """Text of the first element with each id / class."""
        self.paragraphs: list[str] = []
        self.text = ""

    def by_id(self, element_id: str) -> str | None:
        return self.ids.get(element_id)

    def by_class(self, name: str) -> str | None:
        return self.classes.get(name)

    def message(self) -> str:
        """The first non-empty paragraph, else the start of the page's text."""
        return next((p for p in self.paragraphs if p), self.text[:200])


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.form: Form | None = None
        self.text: list[str] = []
        # open elements: (tag, text pieces, ids, classes, href) -- text is collected for every open element
        self.open: list[tuple[str, list[str], str | None, list[str], str | None]] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.form = Form(values.get("action", ""), values.get("method", "get").lower())
            self.page.forms.append(self.form)
        elif tag == "input" and self.form is not None:
            self.form.inputs.append(values)
        if tag in _VOID:
            return
        if tag in _HIDDEN:
            self.hidden += 1
        href = values.get("href") if tag == "a" and "href" in values else None
        self.open.append((tag, [], values.get("id"), values.get("class", "").split(), href))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.form = None
        if not any(t == tag for t, *_ in self.open):
            return  # a stray end tag
        while self.open:
            if self._close() == tag:
                break

    def _close(self) -> str:
        tag, parts, element_id, classes, href = self.open.pop()
        if tag in _HIDDEN:
            self.hidden -= 1
        text = _squash(parts)
        if element_id and element_id not in self.page.ids:
            self.page.ids[element_id] = text
        for name in classes:
            self.page.classes.setdefault(name, text)
        if href is not None:
            self.page.links.append((href, text))
        if tag == "p":
            self.page.paragraphs.append(text)
        if self.open:  # the parent holds this element's text too
            self.open[-1][1].append(text)
        return tag

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        self.text.append(data)
        if self.open:
            self.open[-1][1].append(data)

    def finish(self) -> Page:
        self.close()
        while self.open:
            self._close()
        self.page.text = _squash(self.text)
        return self.page


def parse_page(html: str) -> Page:
    reader = _Reader()
    reader.feed(html)
    return reader.finish()
