"""Pure parser of a wikiHow article page: task title, category path (leaf..level-1), methods and steps."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

from tasks.wikihow.filters import ABSTRACT_CATEGORIES, VISUAL_CATEGORIES
from tasks.wikihow.titles import normalise_title

# wikiHow's 19 level-1 categories: the category path ends at the first of these when read from wgCategories.
LEVEL1_CATEGORIES = VISUAL_CATEGORIES + ABSTRACT_CATEGORIES

_SPACES = re.compile(r"\s+")
_WG_CATEGORIES = re.compile(r'"wgCategories"\s*:\s*(\[[^\]]*\])')
_WG_ARTICLE_ID = re.compile(r'"wgArticleId"\s*:\s*(\d+)')
_KIND = re.compile(r"\b(Method|Part)\b", re.IGNORECASE)
_OF_COUNT = re.compile(r"\bof\s+(\d{1,3})\b")  # "Method 2 of 3", "Part 1 of 3"
# A whole page ends with its closing tag; only whitespace and comments (a cache's stamp) may follow.
_CLOSED = re.compile(r"</html\s*>(?:\s|<!--.*?-->)*\Z", re.IGNORECASE | re.DOTALL)


class ParseError(ValueError):
    """The input is not a parseable wikiHow article; the message is one line meant for users."""


class TruncatedPageError(ParseError):
    """The page was cut short (a download that stopped): asking again may give the whole page."""


@dataclass(frozen=True)
class Step:
    """One numbered step: its bold summary sentence and its full text (summary, elaboration, bullets)."""

    summary: str
    text: str


@dataclass(frozen=True)
class Method:
    """A method ("Method 2 of 3") or part ("Part 1 of 3") of an article, or "steps" when it has only one."""

    name: str
    kind: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Article:
    """What the pipeline keeps of an article page."""

    title: str  # the task, normalised: "Grill Fish"
    headline: str  # as shown: "How to Grill Fish"
    categories: tuple[str, ...]  # leaf ... level-1
    methods: tuple[Method, ...]
    article_id: str | None = None
    url: str | None = None

    @property
    def n_steps(self) -> int:
        return sum(len(m.steps) for m in self.methods)

    @property
    def step_summaries(self) -> list[str]:
        return [s.summary for m in self.methods for s in m.steps]

    def to_json_dict(self) -> dict[str, Any]:
        """The shape printed by `howto wikihow parse --json`."""
        return {
            "title": self.title,
            "categories": list(self.categories),
            "methods": [
                {"name": m.name, "kind": m.kind, "steps": [asdict(s) for s in m.steps]} for m in self.methods
            ],
            "n_steps": self.n_steps,
            "article_id": self.article_id,
            "url": self.url,
        }


def decode_html(data: bytes) -> str:
    """UTF-8 text of a page (wikiHow serves UTF-8); anything else is refused rather than guessed."""
    if not data.strip():
        raise ParseError("empty file")
    if b"\x00" in data[:4096]:
        raise ParseError("binary data, not an HTML page")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8 text (byte {exc.start}: {data[exc.start : exc.start + 1]!r})") from None


def parse_article(html: str | bytes, url: str | None = None) -> Article:
    """Parse a wikiHow article page (desktop or mobile skin); raise ParseError if it is not one."""
    text = decode_html(html) if isinstance(html, bytes) else html
    if not text.strip():
        raise ParseError("empty file")
    if "<" not in text:
        raise ParseError("not HTML")
    tree = LexborHTMLParser(text)
    headline = _headline(tree)
    methods = _methods(tree)
    if not methods:
        if not headline:
            raise ParseError("not a wikiHow article (no title and no steps list)")
        raise ParseError("not a wikiHow article (no steps list found; truncated or broken HTML?)")
    if not headline:
        raise ParseError("broken wikiHow article (no title found)")
    title = normalise_title(headline)
    if not title:
        raise ParseError(f"broken wikiHow article (empty task title in {headline!r})")
    _check_whole(tree, text, methods)
    return Article(
        title=title,
        headline=headline,
        categories=_categories(tree, text),
        methods=tuple(methods),
        article_id=_article_id(tree, text),
        url=url or _canonical(tree),
    )


def _check_whole(tree: LexborHTMLParser, text: str, methods: list[Method]) -> None:
    """Raise TruncatedPageError when the page stops early: a shorter article must never pass as whole."""
    read = f"{len(methods)} method(s), {sum(len(m.steps) for m in methods)} step(s) read"
    if _CLOSED.search(text[-4096:]) is None:
        raise TruncatedPageError(f"truncated page: it ends before </html> ({read})")
    # Each method's heading says how many there are ("Method 2 of 3"); a dropped block leaves fewer.
    counts = (_OF_COUNT.search(node.text()) for node in tree.css("div.section.steps .altblock"))
    declared = max((int(m.group(1)) for m in counts if m), default=0)
    if declared > len(methods):
        kind = methods[-1].kind if methods[-1].kind != "steps" else "method"
        raise TruncatedPageError(f"truncated page: {len(methods)} of {declared} {kind}s found ({read})")


def _clean(text: str | None) -> str:
    return _SPACES.sub(" ", text or "").strip()


def _headline(tree: LexborHTMLParser) -> str:
    for selector in ("h1#section_0", "h1.firstHeading", "h1#firstHeading"):
        node = tree.css_first(selector)
        if node is not None and _clean(node.text()):
            return _clean(node.text())
    og = tree.css_first('meta[property="og:title"]')
    if og is not None and _clean(og.attributes.get("content")):
        return _clean(og.attributes.get("content"))
    node = tree.css_first("title")
    return _clean(node.text()) if node is not None else ""


def _categories(tree: LexborHTMLParser, text: str) -> tuple[str, ...]:
    """Leaf..level-1: the breadcrumb read backwards; else the first chain of wgCategories."""
    crumbs = [
        _clean(a.text())
        for a in tree.css("#breadcrumb a, ul.breadcrumbs a")
        if "Category:" in (a.attributes.get("href") or "") and _clean(a.text())
    ]
    if crumbs:
        return tuple(dict.fromkeys(reversed(crumbs)))
    match = _WG_CATEGORIES.search(text)
    if match:
        try:
            names = [str(n) for n in json.loads(match.group(1))]
        except ValueError:
            names = []
        # MediaWiki lists each filed category followed by its ancestors; the first chain ends at a
        # level-1 category, so that prefix already reads leaf..level-1.
        for i, name in enumerate(names):
            if name in LEVEL1_CATEGORIES:
                return tuple(dict.fromkeys(names[: i + 1]))
        return tuple(dict.fromkeys(names[:1]))
    return ()


def _methods(tree: LexborHTMLParser) -> list[Method]:
    sections = [s for s in tree.css("div.section.steps") if s.css_first("ol.steps_list_2") is not None]
    methods = []
    for section in sections:
        steps = tuple(_step(li) for li in section.css("ol.steps_list_2 > li"))
        steps = tuple(s for s in steps if s.text)
        if not steps:
            continue
        headline = section.css_first("h3 span.mw-headline")
        name = _clean(headline.text()) if headline is not None else ""
        altblock = section.css_first(".altblock")
        kind_match = _KIND.search(altblock.text() if altblock is not None else "")
        kind = kind_match.group(1).lower() if kind_match else "steps"
        methods.append(Method(name=name, kind=kind, steps=steps))
    return methods


def _step(li: LexborNode) -> Step:
    body = li.css_first("div.step") or li
    # Reference markers, hidden source pop-ups, scripts and media are not part of the instruction.
    for junk in body.css("sup.reference, script, style, noscript, .mwimg, video, .ts_popup"):
        junk.decompose()
    bold = body.css_first("b.whb") or body.css_first("b")
    summary = _clean(bold.text()) if bold is not None else ""
    # Bullets sit in <li> elements with no whitespace between them: pad each so words never fuse.
    for item in body.css("li"):
        item.insert_before(" ")
        item.insert_after(" ")
    text = _clean(body.text())
    return Step(summary=summary or text, text=text)


def _article_id(tree: LexborHTMLParser, text: str) -> str | None:
    match = _WG_ARTICLE_ID.search(text)
    if match and match.group(1) != "0":
        return match.group(1)
    node = tree.css_first("[data-aid]")
    if node is not None and (node.attributes.get("data-aid") or "").isdigit():
        return node.attributes.get("data-aid")
    return None


def _canonical(tree: LexborHTMLParser) -> str | None:
    node = tree.css_first('link[rel="canonical"]')
    return node.attributes.get("href") if node is not None else None
