"""The MediaWiki API subset wikiHow answers at /api.php: categorymembers with continuation, page info."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tasks.demo.content import Article
from tasks.demo.wikihow_pages import page_id, revision_id, wikitext

NS_MAIN, NS_CATEGORY = 0, 14
DEFAULT_LIMIT, MAX_LIMIT = 10, 500


@dataclass(frozen=True)
class Member:
    """One category member as the API lists it."""

    ns: int
    title: str  # 'Category:Recipes' for subcategories, the article title for pages

    @property
    def sortkey(self) -> str:
        return self.title.split(":", 1)[-1].upper()


def category_tree(articles: tuple[Article, ...]) -> dict[str, list[Member]]:
    """Members of every category: subcategories first (as MediaWiki orders by type), then pages."""
    tree: dict[str, list[Member]] = {}
    for a in articles:
        path = a.category_path
        for parent, child in zip(path, path[1:], strict=False):
            members = tree.setdefault(parent, [])
            if Member(NS_CATEGORY, f"Category:{child}") not in members:
                members.append(Member(NS_CATEGORY, f"Category:{child}"))
        tree.setdefault(path[-1], []).append(Member(NS_MAIN, a.title))
    for members in tree.values():
        members.sort(key=lambda m: (m.ns != NS_CATEGORY, m.sortkey, m.title))
    return tree


def _error(code: str, info: str) -> dict[str, Any]:
    return {"error": {"code": code, "info": info, "*": "See /api.php for API usage."}}


def _cont_token(m: Member) -> str:
    """MediaWiki's cmcontinue shape: type|hex sortkey|page id."""
    kind = "subcat" if m.ns == NS_CATEGORY else "page"
    return f"{kind}|{m.sortkey.encode().hex().upper()}|{page_id(m.title)}"


def category_members(tree: dict[str, list[Member]], params: dict[str, str]) -> dict[str, Any]:
    """list=categorymembers: one batch, with a continue block while more remain."""
    cmtitle = params.get("cmtitle", "").replace("_", " ")
    if not cmtitle.startswith("Category:"):
        return _error("invalidcategory", "The category name you entered is not valid.")
    members = tree.get(cmtitle.split(":", 1)[1], [])
    types = set(params.get("cmtype", "page|subcat|file").split("|"))
    members = [m for m in members if ("subcat" if m.ns == NS_CATEGORY else "page") in types]
    if params.get("cmnamespace"):
        namespaces = {int(n) for n in params["cmnamespace"].split("|")}
        members = [m for m in members if m.ns in namespaces]
    raw_limit = params.get("cmlimit", str(DEFAULT_LIMIT))
    if raw_limit != "max" and not raw_limit.isdigit():
        return _error("badinteger", f'Invalid value "{raw_limit}" for integer parameter "cmlimit".')
    limit = MAX_LIMIT if raw_limit == "max" else max(1, min(int(raw_limit), MAX_LIMIT))
    start = 0
    if "cmcontinue" in params:
        tokens = [_cont_token(m) for m in members]
        if params["cmcontinue"] not in tokens:
            return _error(
                "badcontinue",
                "Invalid continue param. You should pass the original value returned by the previous query.",
            )
        start = tokens.index(params["cmcontinue"])
    batch = members[start : start + limit]
    out: dict[str, Any] = {"batchcomplete": ""}
    if start + limit < len(members):
        out["continue"] = {"cmcontinue": _cont_token(members[start + limit]), "continue": "-||"}
    out["query"] = {
        "categorymembers": [{"pageid": page_id(m.title), "ns": m.ns, "title": m.title} for m in batch]
    }
    return out


def _page(article: Article, props: set[str], v2: bool, rvprop: set[str]) -> dict[str, Any]:
    page: dict[str, Any] = {"pageid": page_id(article.title), "ns": NS_MAIN, "title": article.title}
    if "categories" in props:
        page["categories"] = [{"ns": NS_CATEGORY, "title": f"Category:{article.leaf_category}"}]
    if "revisions" in props:
        rev: dict[str, Any] = {
            "revid": revision_id(article.title),
            "parentid": revision_id(article.title) - 1,
        }
        if "content" in rvprop:
            text = wikitext(article)
            rev.update({"contentformat": "text/x-wiki", "contentmodel": "wikitext"})
            rev["content" if v2 else "*"] = text
        page["revisions"] = [rev]
    if "info" in props:
        page.update(
            {
                "contentmodel": "wikitext",
                "pagelanguage": "en",
                "pagelanguagehtmlcode": "en",
                "pagelanguagedir": "ltr",
                "touched": "2026-10-01T12:00:00Z",
                "lastrevid": revision_id(article.title),
                "length": len(wikitext(article).encode()),
            }
        )
    return page


def query_pages(articles: tuple[Article, ...], params: dict[str, str]) -> dict[str, Any]:
    """prop=categories|revisions|info for titles= or pageids=."""
    v2 = params.get("formatversion") == "2"
    props = set(params.get("prop", "").split("|")) - {""}
    rvprop = set(params.get("rvprop", "ids|timestamp|flags|comment|user").split("|"))
    by_title = {a.title: a for a in articles}
    by_id = {page_id(a.title): a for a in articles}
    pages: list[dict[str, Any]] = []
    normalized = []
    if "titles" in params:
        for i, raw in enumerate(params["titles"].split("|")):
            title = raw.replace("_", " ").strip()
            title = title[:1].upper() + title[1:]  # MediaWiki capitalises the first letter
            if title != raw:
                normalized.append({"from": raw, "to": title})
            if title in by_title:
                pages.append(_page(by_title[title], props, v2, rvprop))
            else:
                pages.append({"ns": NS_MAIN, "title": title, "missing": True if v2 else "", "_id": -1 - i})
    for raw in filter(None, params.get("pageids", "").split("|")):
        if int(raw) in by_id:
            pages.append(_page(by_id[int(raw)], props, v2, rvprop))
        else:
            pages.append({"pageid": int(raw), "missing": True if v2 else "", "_id": int(raw)})
    query: dict[str, Any] = {}
    if normalized:
        query["normalized"] = normalized
    if v2:
        query["pages"] = [{k: v for k, v in p.items() if k != "_id"} for p in pages]
    else:
        query["pages"] = {str(p.pop("_id", p.get("pageid"))): p for p in pages}
    return {"batchcomplete": True if v2 else "", "query": query}


def handle(articles: tuple[Article, ...], params: dict[str, str]) -> dict[str, Any]:
    """Answer one /api.php request (JSON only, as with format=json)."""
    if params.get("action") != "query":
        return _error("badvalue", f'Unrecognized value for parameter "action": {params.get("action", "")}.')
    if params.get("list") == "categorymembers":
        return category_members(category_tree(articles), params)
    if "titles" in params or "pageids" in params:
        return query_pages(articles, params)
    return {"batchcomplete": ""}
