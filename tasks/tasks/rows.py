"""Rows of the `tasks` dataset: mined articles, duplicates, failures and imported titles."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import pyarrow as pa

from storage.schemas import get_schema
from tasks.tasks.parse_attempts import PARSE_ATTEMPTS, PARSE_LIMIT, count_abort, given_up
from tasks.tasks.task_lists import ImportedTask
from tasks.wikihow.bounded_parse import ParseAborted
from tasks.wikihow.client import OffSiteRedirect, WikiHowClient, WikiHowError
from tasks.wikihow.crawl import PlannedArticle
from tasks.wikihow.filters import VisualFilter, decide
from tasks.wikihow.parser import Article, ParseError, TruncatedPageError
from tasks.wikihow.titles import dedup_key, task_id


def task_row(
    *,
    title: str,
    source_id: str | None,
    source: str,
    crawl_id: str,
    url: str | None = None,
    category_path: Sequence[str] = (),
    n_methods: int | None = None,
    steps: Sequence[str] | None = None,
    keep: bool = False,
    drop_reason: str | None = None,
    status: str = "ok",
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "task_id": task_id(title),
        "source_id": source_id,
        "source": source,
        "title": title,
        "url": url,
        "category_path": list(category_path),
        "n_methods": n_methods,
        "n_steps": len(steps) if steps is not None else None,
        "steps": list(steps) if steps is not None else None,
        "keep": keep,
        "drop_reason": drop_reason,
        "status": status,
        "error": error,
        "crawl_id": crawl_id,
    }


def mined_row(
    item: PlannedArticle,
    client: WikiHowClient,
    parse: Callable[[str, str], Article],
    rules: VisualFilter,
    crawl_id: str,
    parse_aborts: MutableMapping[str, int] | None = None,
) -> dict[str, Any]:
    """Fetch, parse (`parse(html, url)`: a BoundedParser's in the stage) and judge one article; failures become
    rows, never exceptions.

    `parse_aborts` holds the aborted parses of each title on earlier runs of this shard; an abort now is
    added to it (the stage reads and saves it: this function does no file I/O), and the PARSE_ATTEMPTS-th
    gives the page up. None counts nothing (every abort is the first).
    """
    url = client.article_url(item.title)

    def row(**fields: Any) -> dict[str, Any]:
        fields.setdefault("url", url)
        fields.setdefault("category_path", item.category_path)
        source_id = str(item.pageid) if item.pageid else None
        return task_row(title=item.title, source_id=source_id, source="wikihow", crawl_id=crawl_id, **fields)

    if item.duplicate_of is not None:
        # Not fetched: the keeper (earlier in sorted order) already stands for this task.
        return row(drop_reason="duplicate")
    try:
        article = parse(client.fetch_article(item.title), url)
    except OffSiteRedirect as exc:
        # Not followed (robots.txt and the rate limit cover this site only), and the page says it again next run.
        return row(status="failed", drop_reason="off_site_redirect", error=str(exc))
    except WikiHowError as exc:
        # 404/410/robots will not get better by asking again: "failed"; the rest is retried next run.
        if exc.permanent:
            return row(status="failed", drop_reason="not_found", error=str(exc))
        return row(status="error", error=str(exc))
    except TruncatedPageError as exc:
        # A page cut short in transfer is whole on another fetch: retried next run (uncounted), never a short
        # article.
        return row(status="error", error=f"{url}: {exc}")
    except ParseAborted as exc:
        # A parse stopped at its limits may have met a loaded machine: retried, at the same bounded cost; but a
        # page that is pathological in itself would cost that on every run, so it is given up after a few.
        tries = count_abort(parse_aborts if parse_aborts is not None else {}, item.title)
        if given_up(tries):
            error = f"{url}: {exc} (given up after {tries} aborted parses)"
            return row(status="failed", drop_reason=PARSE_LIMIT, error=error)
        return row(
            status="error", error=f"{url}: {exc} (parse {tries} of {PARSE_ATTEMPTS}, retried next run)"
        )
    except ParseError as exc:
        # A page that is not an article stays what it is on the next run too: permanent, "failed".
        return row(status="failed", drop_reason="not_an_article", error=f"{url}: {exc}")
    path = article.categories or item.category_path
    reason = decide(article.title, path, rules)
    return row(
        url=article.url or url,
        category_path=path,
        n_methods=len(article.methods),
        steps=article.step_summaries,
        keep=reason is None,
        drop_reason=reason,
    )


def imported_rows(
    items: Sequence[ImportedTask],
    source: str,
    rules: VisualFilter,
    crawl_id: str,
    seen: set[str] | None = None,
) -> list[dict[str, Any]]:
    """Imported titles judged by the verb rules (they carry no categories); later duplicates dropped.

    `seen` holds the de-dup keys of titles kept before this file (earlier imports, crawls).
    """
    seen = set(seen or ())
    rows = []
    for item in items:
        key = dedup_key(item.title)
        if key in seen:
            reason: str | None = "duplicate"
        else:
            seen.add(key)
            reason = decide(item.title, (), rules)
        rows.append(
            task_row(
                title=item.title,
                source_id=item.source_id,
                source=source,
                crawl_id=crawl_id,
                keep=reason is None,
                drop_reason=reason,
            )  # fmt: skip
        )
    return rows


def rows_to_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=get_schema("tasks").schema)
