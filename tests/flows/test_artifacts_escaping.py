"""Drop reasons from the data in the Prefect artifacts stay text: the stage summary and the pipeline summary
(Markdown artifacts) and the per-shard table (whose string cells the UI renders as Markdown), read back from
a real Prefect server and rendered as a viewer that does not sanitise would, add no tag, link or cell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from prefect import flow

from flows.pipeline import summary_markdown
from flows.runtime import finish_stage, summarize
from storage.layout import DataRoot

REASON = 'category_not_allowed: Home | Garden <img src=x onerror="alert(1)"> [win](http://e.test)\nFAKE'
STAGE = "escape_check"
MANIFESTS = [{"shard": 0, "rows_in": 3, "rows_out": 1, "drops": {REASON: 2}, "errors": 0}]


def _render(text: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(text)


def _assert_text(html: str) -> None:
    for tag in ("<img", "<a ", "<script"):
        assert tag not in html, tag
    assert "Home | Garden &lt;img src=x onerror=&quot;alert(1)&quot;&gt; [win](http://e.test)<br>FAKE" in html


@flow(name="escape-check")
def _stage(root_url: str) -> dict[str, Any]:
    root = DataRoot.from_any(root_url)
    return finish_stage(STAGE, root, summarize(STAGE, MANIFESTS))


def test_a_hostile_drop_reason_stays_text_in_the_stage_artifacts(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    root = DataRoot.from_any(tmp_path / "data")
    summary = _stage(root.url)
    assert summary["drops"] == {REASON: 2}  # the summary itself keeps the reason as it is
    with get_client(sync_client=True) as client:
        artifacts = {a.key: a for a in client.read_latest_artifacts()}
    html = _render(str(artifacts["escape-check-summary"].data))
    _assert_text(html)
    drops = html[html.index("<td>drops</td>") :]
    assert drops[: drops.index("</tr>")].count("<td") == 2  # its row keeps its two cells
    assert "<td>FAKE" not in html
    table = artifacts["escape-check-shards"].data
    rows = json.loads(table) if isinstance(table, str) else table  # Prefect stores the table as JSON text
    _assert_text(_render(rows[0]["drops"]))  # as the UI's table renders a string cell


def test_a_hostile_drop_reason_stays_text_in_the_pipeline_summary() -> None:
    summaries = {"crawl_id": "c1", "tasks": {"shards": 1, "shards_cached": 0, "rows_in": 3, "rows_out": 1,
                                             "drops": {REASON: 2}, "errors": 0}}  # fmt: skip
    html = _render(summary_markdown("recrawl c1|<b>x</b>", summaries))
    _assert_text(html)
    assert "<b>" not in html
    row = html[html.index("<td>tasks</td>") :]
    assert row[: row.index("</tr>")].count("<td") == 6
