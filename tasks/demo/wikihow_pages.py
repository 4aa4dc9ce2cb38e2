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
        lines += [f"# {s.summary} {s.detail}" for s in method.steps]
    if article.tips:
        lines += ["", "== Tips =="] + [f"* {t}" for t in article.tips]
    lines += ["", f"[[Category:{article.leaf_category}]]"]
    return "\n".join(lines) + "\n"


def _steps_html(article: Article) -> str:
    parts: list[str] = []
    multi = len(article.methods) > 1
    for mi, method in enumerate(article.methods, start=1):
        items = []
        for si, step in enumerate(method.steps, start=1):
            items.append(
                f'<li id="step-id-{mi - 1}{si - 1}">'
                f'<div class="step_num" aria-label="Step {si}">{si}</div>'
                f'<a name="step_{mi}_{si}" class="stepanchor"></a>'
                f'<div class="step"><b class="whb">{escape(step.summary)}</b> {escape(step.detail)}'
                f'<div class="clearall"></div></div><div class="clearall"></div></li>'
            )
        first = " steps_first" if mi == 1 else ""
        if multi:
            head = (
                f'<a name="{anchor(method.name)}_sub" class="anchor"></a>'
                f'<h3><div class="altblock"><label class="method_label">Method</label> <span>{mi}</span></div>'
                f'<span class="mw-headline" id="{anchor(method.name)}">{escape(method.name)}</span></h3>'
            )
            text_id = f"steps_{mi}"
        else:
            head = '<h2><span class="mw-headline" id="Steps">Steps</span></h2>'
            text_id = "steps"
        parts.append(
            f'<div class="section steps{first} sticky">{head}'
            f'<div id="{text_id}" class="section_text"><ol class="steps_list_2">{"".join(items)}</ol>'
            f'<div class="clearall"></div></div></div>'
        )
    return "\n".join(parts)


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
    """wikiHow's breadcrumb list: Home, then each category from level 1 down."""
    crumbs = ['<li class="home"><a href="/Main-Page">Home</a></li>']
    crumbs += [f'<li><a href="/Category:{url_title(c)}">{escape(c)}</a></li>' for c in category_path]
    return f'<ul id="breadcrumb" class="breadcrumbs" aria-label="Breadcrumbs">{"".join(crumbs)}</ul>'


def article_html(article: Article, base_url: str) -> str:
    """The full article page."""
    title = article.display_title
    tips = ""
    if article.tips:
        lis = "".join(f"<li>{escape(t)}</li>" for t in article.tips)
        tips = (
            '<div class="section tips sticky"><h2><span class="mw-headline" id="Tips">Tips</span></h2>'
            f'<div id="tips" class="section_text"><ul>{lis}</ul></div></div>'
        )
    return f"""<!DOCTYPE html>
<html lang="en" dir="ltr" class="client-nojs">
<head>
<meta charset="UTF-8"/>
<title>{escape(title)} - wikiHow</title>
<meta name="description" content="{escape(article.intro)}"/>
<link rel="canonical" href="{base_url}/{url_title(article.title)}"/>
<script>{_config_script(article)}</script>
</head>
<body class="mediawiki ltr sitedir-ltr ns-0 ns-subject page-{anchor(article.title)} skin-owl action-view">
<div id="header_container"><div id="header"><a href="/Main-Page" id="logo_link">wikiHow</a></div></div>
<div id="main_container" class="">
<div id="main">
<div id="breadcrumb_container">{breadcrumb_html(article.category_path)}</div>
<div id="article_shell">
<div id="article" class="">
<div class="pre-content"><h1 id="section_0" class="title_lg"><a href="{base_url}/{url_title(article.title)}">{escape(title)}</a></h1></div>
<div id="bodycontents">
<div id="mf-section-0" class="section wh_block"><div id="intro" class="section"><p>{escape(article.intro)}</p>
<div class="clearall"></div></div></div>
{_steps_html(article)}
{tips}
</div>
</div>
</div>
</div>
</div>
</body>
</html>
"""


def category_html(name: str, subcats: list[str], pages: list[str]) -> str:
    """A plain category page listing subcategories and articles (what the breadcrumbs link to)."""
    sub = "".join(f'<li><a href="/Category:{url_title(c)}">{escape(c)}</a></li>' for c in subcats)
    art = "".join(f'<li><a href="/{url_title(p)}">How to {escape(p)}</a></li>' for p in pages)
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
