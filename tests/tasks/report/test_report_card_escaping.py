"""Values from the data in the dataset card (README.md) stay text: rendered as a viewer that does not sanitise
would (CommonMark with GFM tables and raw HTML on), a hostile drop reason, caption language or crawl id adds
no tag, link or table cell."""

from __future__ import annotations

from html import unescape
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from tasks.report.card import write_report
from tasks.report.markdown_text import md_code, md_text
from tasks.report.plots import FIGURES
from tests.storage.catalog_data import _write, build_root, rows_table

CATEGORY = 'category_not_allowed: Home | Garden <img src=x onerror="alert(1)"> [win](http://e.test) \\'
LANG = "en<script>alert(2)</script>\nFAKE ROW"
CRAWL = "c1|<b>x</b>"


def _render(card: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(card)


def test_hostile_values_in_the_card_stay_text_in_their_cells(tmp_path: Path) -> None:
    root = build_root(tmp_path)
    tasks = [{"task_id": "t1", "title": "Plant a Rose", "keep": False, "drop_reason": CATEGORY, "status": "ok",
              "crawl_id": "c0"}]  # fmt: skip
    _write(root, "tasks", 0, rows_table("tasks", tasks))
    videos = [{"video_id": "3" * 11, "duration_s": 60.0, "keep": True, "status": "ok", "crawl_id": CRAWL}]
    _write(root, "videos", 1, rows_table("videos", videos))
    captions = [{"video_id": "2" * 11, "n_words": 200, "keep": True, "status": "ok", "caption_kind": "manual",
                 "caption_lang": LANG, "crawl_id": "c0"}]  # fmt: skip
    _write(root, "captions", 1, rows_table("captions", captions))
    card = Path(write_report(root, tmp_path / "report")["card"]).read_text()
    html = _render(card)
    for tag in ("<script", "<b>", "<a "):
        assert tag not in html, tag
    assert html.count("<img") == len(FIGURES)  # the card's own figures, no other
    assert "FAKE ROW" not in [line.strip() for line in card.splitlines()]
    # The tasks row of the funnel keeps its four cells, the reason whole in the last one.
    row = html[html.index("<td>tasks</td>") :]
    row = row[: row.index("</tr>")]
    assert row.count("<td") == 4
    assert (
        "Home | Garden &lt;img src=x onerror=&quot;alert(1)&quot;&gt; [win](http://e.test) \\ 1</td>" in row
    )
    assert "manual / en&lt;script&gt;alert(2)&lt;/script&gt;<br>FAKE ROW: 1 videos" in html
    assert "<li>c1|&lt;b&gt;x&lt;/b&gt;: " in html


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("not_found", "not_found"),  # an ordinary reason reads as it did
        ("video unavailable (re-crawl)", "video unavailable (re-crawl)"),
        ("a|b", "a\\|b"),
        ("\\|", "\\\\\\|"),  # a value's backslash cannot undo the pipe's
        ("x\r\ny\rz", "x<br>y<br>z"),
        ("<i>&amp;</i>", "&lt;i&gt;&amp;amp;&lt;/i&gt;"),
        ("![t](http://e.test/p.png)", "!\\[t\\](http://e.test/p.png)"),
    ],
)
def test_md_text(value: str, shown: str) -> None:
    assert md_text(value) == shown


def test_a_data_root_with_backticks_stays_in_its_code_span() -> None:
    for root in ("/data/howto", "s3://b/`<img src=x>`", "``"):
        rendered = _render(f"Data root {md_code(root)}, made today.")
        assert "<img" not in rendered and rendered.count("<code>") == 1
        assert unescape(rendered.split("<code>")[1].split("</code>")[0]).strip() == root
