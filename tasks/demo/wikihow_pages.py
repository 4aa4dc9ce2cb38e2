"""Render demo articles as wikiHow serves them: article HTML (real markup), wikitext, category pages."""

from __future__ import annotations

import hashlib
import json
from html import escape

from tasks.demo.content import Article, url_title


def page_id(title: str) -> int:
    """A stable MediaWiki-style page id for a title (articles and categories alike)."""
    return int.from_bytes(hashlib.sha256(title.encode()).digest()[:3], "big") + 10_000


def revision_id(title: str) -> int:
    """A stable revision id for a title."""
    return page_id(title) * 37 + 1_000_000


def anchor(text: str) -> str:
    """MediaWiki heading anchor: spaces to underscores."""
    return text.replace(" ", "_")


def wikitext(article: Article) -> str:
    """The article's source as the API returns it: intro, == Steps ==, === methods ===, # steps."""
    lines = [article.intro, "", "== Steps =="]
    multi = len(article.methods) > 1
    for method in article.methods:
        if multi:
            lines.append(f"=== {method.name} ===")
        for s in method.steps:
            lines.append(f"# {s.summary} {s.detail}")
            lines += [f"#* {b}" for b in s.bullets]
    if article.tips:
        lines += ["", "== Tips =="] + [f"* {t}" for t in article.tips]
    lines += ["", f"[[Category:{article.leaf_category}]]"]
    return "\n".join(lines) + "\n"


def heading_id(text: str) -> str:
    """wikiHow's heading anchors: words joined by dashes."""
    return "-".join(text.split())


def _bullets(bullets: tuple[str, ...]) -> str:
    return f"<ul>{''.join(f'<li>{escape(b)}</li>' for b in bullets)}</ul>\n" if bullets else ""


def _steps_html(article: Article) -> str:
    """The Steps h2 and one `div.section.steps` per method, in wikiHow's (mobile-frontend) markup."""
    multi = len(article.methods) > 1
    hidden = " hidden" if multi else ""  # with methods, wikiHow hides the Steps h2 behind the h3s
    parts = [
        f'<h2 class="section-heading{hidden}" onclick="javascript:mfTempOpenSection(1)">\n'
        '<div class="mw-ui-icon mw-ui-icon-element indicator"></div>\n'
        '<span class="mw-headline" id="Steps">Steps</span>\n</h2>\n'
        '<div class="mf-section-1 collapsible-block" id="mf-section-1">'
    ]
    for mi, method in enumerate(article.methods, start=1):
        items = []
        for si, step in enumerate(method.steps, start=1):
            items.append(
                f'<li id="step-id-{mi - 1}{si - 1}">\n<a name="step_{mi}_{si}" class="stepanchor"></a>\n'
                f'<div class="step_num">{si}</div><div class="step">\n'
                f'<b class="whb">{escape(step.summary)}</b> {escape(step.detail)}\n{_bullets(step.bullets)}</div>\n'
                '<div class="clearall"></div>\n</li>'
            )
        first = " steps_first" if mi == 1 else ""
        head, text_id = "", "steps"
        if multi:
            text_id = f"steps_{mi}"
            head = (
                '<h3 class="in-block">\n<div class="altblock"><div>'
                f'Method <span>{mi}</span><span class="method_of_count"> of {len(article.methods)}:</span>\n'
                f'</div>\n</div>\n<span class="mw-headline" id="{heading_id(method.name)}">'
                f"{escape(method.name)}</span>\n</h3>\n"
            )
        parts.append(
            f'<div class="section steps {first} sticky">\n{head}'
            f'<div id="{text_id}" class="section_text">\n<ol class="steps_list_2">\n'
            + "\n".join(items)
            + '\n</ol>\n<div class="clearall"></div>\n</div>\n</div>'
        )
    parts.append("</div>")
    return "\n".join(parts)


def _method_toc(article: Article) -> str:
    """The "Explore this Article" list of methods at the top of multi-method articles."""
    if len(article.methods) < 2:
        return ""
    items = "".join(
        f'<div class="method_toc_item  toc_method " id="" data-section="">'
        f'<a href="#{heading_id(m.name)}">{escape(m.name)}</a></div>'
        for m in article.methods
    )
    return (
        '<div role="navigation" id="method_toc" class="intl_toc"><div><div id="method_toc_list">'
        f'<span class="header_toc">Explore this Article</span>{items}</div></div></div>'
    )


def _config_script(article: Article) -> str:
    """The mw.config block wikiHow (MediaWiki) puts in every page, wgCategories included."""
    cfg = {
        "wgCanonicalNamespace": "",
        "wgCanonicalSpecialPageName": False,
        "wgNamespaceNumber": 0,
        "wgPageName": anchor(article.title),
        "wgTitle": article.title,
        "wgCurRevisionId": revision_id(article.title),
        "wgRevisionId": revision_id(article.title),
        "wgArticleId": page_id(article.title),
        "wgIsArticle": True,
        "wgIsRedirect": False,
        "wgAction": "view",
        "wgUserName": None,
        "wgUserGroups": ["*"],
        "wgCategories": [article.leaf_category],
        "wgBreakFrames": False,
        "wgPageContentLanguage": "en",
        "wgPageContentModel": "wikitext",
        "wgRelevantPageName": anchor(article.title),
        "wgRelevantArticleId": page_id(article.title),
    }
    return f"(window.RLQ=window.RLQ||[]).push(function(){{mw.config.set({json.dumps(cfg, separators=(',', ':'))});}});"


def breadcrumb_html(category_path: tuple[str, ...]) -> str:
    """wikiHow's breadcrumb list: Categories, then each category from level 1 down."""
    crumbs = ['<li><a href="/Special:CategoryListing" title="Special:CategoryListing">Categories</a></li>']
    crumbs += [
        f'<li><a href="/Category:{escape(url_title(c))}" title="Category:{escape(c)}">{escape(c)}</a></li>'
        for c in category_path
    ]
    return f'<ul id="breadcrumb" class="breadcrumbs" aria-label="Category breadcrumbs">{"".join(crumbs)}</ul>'


def article_html(article: Article, base_url: str) -> str:
    """The full article page, structured as wikiHow's (see tests/fixtures/wikihow for real ones)."""
    title = article.display_title
    href = f"{base_url}/{url_title(article.title)}"
    tips = ""
    if article.tips:
        lis = "".join(f"<li>{escape(t)}</li>" for t in article.tips)
        tips = (
            '<div class="section tips sticky"><h2 class="section-heading"><span class="mw-headline" id="Tips">'
            f'Tips</span></h2><div id="tips" class="section_text"><ul>{lis}</ul></div></div>'
        )
    return f"""<!DOCTYPE html>
<html class="client-nojs" lang="en" dir="ltr">
<head>
<meta charset="utf-8"/>
<title>{escape(title)} - wikiHow</title>
<meta name="generator" content="MediaWiki 1.33.0-alpha"/>
<meta name="description" content="{escape(title)}. {escape(article.intro)}"/>
<link rel="EditURI" type="application/rsd+xml" href="{base_url}/api.php?action=rsd"/>
<link rel="canonical" href="{href}"/>
<script>{_config_script(article)}</script>
</head>
<body>
<div id="content_inner"><div class="pre-content">{breadcrumb_html(article.category_path)}<h1 id="section_0" class="title_lg"><a href="{href}">How to {escape(article.title)}</a></h1></div><div id="bodyContent" class="content">
<div id="mw-content-text" lang="en" dir="ltr" class="mw-content-ltr">
<div class="mw-parser-output">
<div id="intro" class="section hasad sticky">
{_method_toc(article)}
<div class="mf-section-0" id="mf-section-0">
<p>{escape(article.intro)}</p>
</div>
<div class="clearall"></div>
</div>
{_steps_html(article)}
{tips}
</div>
</div>
</div>
</div>
</body>
</html>
"""


def category_html(name: str, subcats: list[str], pages: list[str]) -> str:
    """A plain category page listing subcategories and articles (what the breadcrumbs link to)."""
    sub = "".join(f'<li><a href="/Category:{escape(url_title(c))}">{escape(c)}</a></li>' for c in subcats)
    art = "".join(f'<li><a href="/{escape(url_title(p))}">How to {escape(p)}</a></li>' for p in pages)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8"/><title>{escape(name)} - wikiHow</title>'
        f'</head><body class="mediawiki ns-14 skin-owl"><h1 class="firstHeading">{escape(name)}</h1>'
        f'<div id="cat_subcats"><ul>{sub}</ul></div><div id="cat_all"><ul>{art}</ul></div></body></html>\n'
    )


ROBOTS_TXT = """User-agent: *
Disallow: /Special:
Disallow: /index.php
Disallow: /*?action=
Allow: /api.php
Sitemap: /sitemap_index.xml
"""
