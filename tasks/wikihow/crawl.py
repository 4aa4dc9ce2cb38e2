"""Walk wikiHow's category tree (depth limit, cycle guard) and plan the articles into stable shards."""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from tasks.wikihow.client import CATEGORY_NS, Member
from tasks.wikihow.titles import dedup_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoundArticle:
    """An article met during the walk, with the category path that led to it (leaf..level-1)."""

    title: str
    pageid: int
    category_path: tuple[str, ...]


@dataclass(frozen=True)
class PlannedArticle(FoundArticle):
    """An article placed in a shard; `duplicate_of` names the title that keeps the task."""

    duplicate_of: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "category_path": list(self.category_path)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> PlannedArticle:
        path = data.get("category_path") or ()
        return cls(
            title=str(data["title"]),
            pageid=int(str(data.get("pageid", 0))),
            category_path=tuple(str(c) for c in path) if isinstance(path, list | tuple) else (),
            duplicate_of=str(data["duplicate_of"]) if data.get("duplicate_of") else None,
        )


def _bare(category: str) -> str:
    return category.split(":", 1)[1] if category.startswith("Category:") else category


def walk_categories(
    roots: Sequence[str], list_members: Callable[[str], list[Member]], max_depth: int
) -> list[FoundArticle]:
    """Breadth-first from each root, at most `max_depth` subcategory levels down.

    Category graphs on wikis have cycles and diamonds: each category is listed once (the first,
    shallowest path wins) and each article keeps the first path it was found under. Members are
    visited in sorted order so the same site gives the same paths on every run.
    """
    seen_categories: set[str] = set()
    found: dict[str, FoundArticle] = {}
    queue: deque[tuple[str, tuple[str, ...], int]] = deque()
    for root in roots:
        name = _bare(root)
        if name.casefold() not in seen_categories:
            seen_categories.add(name.casefold())
            queue.append((name, (name,), 0))
    while queue:
        category, path_down, depth = queue.popleft()
        members = sorted(list_members(category), key=lambda m: (m.ns, m.title))
        for member in members:
            if member.ns == CATEGORY_NS:
                sub = _bare(member.title)
                if depth < max_depth and sub.casefold() not in seen_categories:
                    seen_categories.add(sub.casefold())
                    queue.append((sub, (*path_down, sub), depth + 1))
            elif member.ns == 0 and member.title not in found:
                found[member.title] = FoundArticle(member.title, member.pageid, tuple(reversed(path_down)))
    log.info("walked %d categories, found %d articles", len(seen_categories), len(found))
    return sorted(found.values(), key=lambda a: a.title)


def plan_shards(
    articles: Sequence[FoundArticle], shard_size: int, max_articles: int | None = None
) -> list[list[PlannedArticle]]:
    """Sorted titles chunked into shards; duplicates (same de-dup key) point at the first title.

    De-duplication is global, so it is decided here, before sharding, over the whole sorted list:
    the earliest title in sorted order keeps the task and every later one is recorded as its
    duplicate without being fetched. Deciding it inside shards could not see across shard edges.
    """
    ordered = sorted(articles, key=lambda a: (a.title, a.pageid))
    if max_articles is not None:
        ordered = ordered[:max_articles]
    first_by_key: dict[str, str] = {}
    planned = []
    for article in ordered:
        key = dedup_key(article.title)
        keeper = first_by_key.setdefault(key, article.title)
        duplicate_of = keeper if keeper != article.title else None
        planned.append(PlannedArticle(article.title, article.pageid, article.category_path, duplicate_of))
    return [planned[i : i + shard_size] for i in range(0, len(planned), shard_size)]


def shard_members_hash(shard: Sequence[PlannedArticle]) -> str:
    """Hash of what a shard holds, so a re-crawl that moves titles between shards reruns those shards."""
    blob = "\n".join(
        f"{a.title}\t{a.pageid}\t{'/'.join(a.category_path)}\t{a.duplicate_of or ''}" for a in shard
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
