"""The Hugging Face export's dataset card shows a category from the data (wikiHow's, scraped) and the export's
name as text: rendered as a viewer that does not sanitise would, they add no tag, link or line."""

from __future__ import annotations

from pathlib import Path

from markdown_it import MarkdownIt

from storage.catalog import refresh
from tasks.exports.hf import export_hf
from tasks.exports.select import ExportFilter
from tests.storage.catalog_data import _write, build_root
from tests.storage.test_shards import clips_table

CATEGORY = 'Home | Garden <img src=x onerror="alert(1)"> [win](http://e.test)\n## FAKE'


def test_a_hostile_category_and_name_stay_text_in_the_card(tmp_path: Path) -> None:
    root = build_root(tmp_path)  # video 000... is kept by every stage; its clips are in shard 0
    clips = clips_table(["0" * 11] * 2)
    _write(root, "clips", 0, clips.set_column(3, "category", [[CATEGORY] * 2]))
    refresh(root)
    summary = export_hf(root, tmp_path / "hf", ExportFilter(categories=(CATEGORY,)), features="none",
                        name="clips <script>alert(2)</script>")  # fmt: skip
    assert summary["rows"] == 2
    card = (tmp_path / "hf" / "README.md").read_text(encoding="utf-8")
    body = card.split("\n---\n", 1)[1]  # past the YAML front matter (the Hub reads it as data)
    html = MarkdownIt("commonmark", {"html": True}).render(body)
    for tag in ("<img", "<a ", "<script", "<h2>FAKE"):
        assert tag not in html, tag
    assert "<h1>clips &lt;script&gt;alert(2)&lt;/script&gt;</h1>" in html
    shown = "Home | Garden &lt;img src=x onerror=&quot;alert(1)&quot;&gt; [win](http://e.test)<br>## FAKE"
    assert f"<li>categories: {shown}</li>" in html
