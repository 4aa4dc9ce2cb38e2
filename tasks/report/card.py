"""Write the report: `README.md` (the dataset card), `index.html` (a static page) and the PNG figures."""

from __future__ import annotations

import html
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from storage.layout import DataRoot
from tasks.exports.target import (
    MARKER,
    ExportRefused,
    check_no_symlinks,
    check_outside_root,
    check_writable,
    read_marker,
    write_marker,
)
from tasks.report.markdown_text import md_code, md_text
from tasks.report.numbers import ReportNumbers, collect
from tasks.report.plots import FIGURES


def _fmt(value: float) -> str:
    if float(value).is_integer() or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) < 0.005:  # two decimals would print a few seconds of clips or video as 0.00 hours
        return f"{value:.2g}"
    return f"{value:,.2f}"


def _mean_median(n: ReportNumbers, key: str, decimals: int) -> str:
    """The mean and median as "mean / median", or "-" when there are no clips to average over."""
    mean, median = n.means[key], n.medians[key]
    if mean is None or median is None:
        return "-"
    return f"{mean:.{decimals}f} / {median:.{decimals}f}"


def summary_rows(n: ReportNumbers) -> list[tuple[str, str, str]]:
    """(what, ours, HowTo100M as published)."""
    kept_videos = n.funnel[3].kept if len(n.funnel) > 3 else 0
    return [
        ("tasks kept", _fmt(n.funnel[0].kept), _fmt(n.paper["tasks"])),
        ("videos with clips", _fmt(n.videos_with_clips), _fmt(n.paper["videos"])),
        ("videos kept (captions)", _fmt(kept_videos), "-"),
        ("clips", _fmt(n.clips), _fmt(n.paper["clips"])),
        ("hours (sum of clip spans)", _fmt(n.hours), f"{_fmt(n.paper['hours'])} (of video)"),
        ("clips per video (mean / median)", _mean_median(n, "clips_per_video", 1), f"~{n.paper['clips_per_video']:.0f}"),
        ("clip duration, s (mean / median)", _mean_median(n, "clip_duration_s", 2), f"~{n.paper['clip_duration_s']:.0f}"),
        ("words per clip (mean / median)", _mean_median(n, "words_per_clip", 2), f"~{n.paper['words_per_clip']:.0f}"),
    ]  # fmt: skip


def funnel_rows(n: ReportNumbers) -> list[tuple[str, str, str, str]]:
    return [
        (
            s.name,
            f"{s.total:,} {s.unit}",
            f"{s.kept:,}",
            ", ".join(f"{r} {c:,}" for r, c in s.drops.items()) or "-",
        )
        for s in n.funnel
    ]


def feature_lines(n: ReportNumbers) -> list[str]:
    """What the features cover, and a warning where they come from random weights."""
    f = n.features
    if not f:
        return []
    by_model = ", ".join(f"{m} {c:,}" for m, c in f["videos_by_model"].items()) or "none yet"
    lines = [
        f"Videos with features, by model: {by_model}; failed {f['videos_failed']:,}; kept videos without "
        f"features {f['kept_videos_without_features']:,}; {_fmt(f['hours'])} h of video covered."
    ]
    if f["videos_random_weights"]:
        lines.append(
            f"WARNING: the features of {f['videos_random_weights']:,} video(s) come from random weights, not "
            "pretrained ones: fine for trying the pipeline, meaningless for research."
        )
    return lines


def _md_row(cells: Sequence[object]) -> str:
    """One Markdown table row, each cell escaped: a value's `|`, line break or HTML stays text in its cell."""
    return "| " + " | ".join(md_text(c) for c in cells) + " |"


def markdown(n: ReportNumbers, made_at: str) -> str:
    """The dataset card; every value read from the data is escaped (md_text, md_code): it is text, never
    Markdown or HTML."""
    lines = [
        "---", "language: [en]", "tags: [howto100m, video, narration, instructional-videos]", "---", "",
        "# Dataset card: narrated instructional-video clips", "",
        f"Data root {md_code(n.root)}, report made {made_at}. Numbers read with DuckDB over the finished shards.",
        "Clips are caption lines of YouTube videos found for wikiHow tasks (the HowTo100M recipe), each with",
        "its span in integer milliseconds; frame features (ResNet-152 2D at 1/s, ResNeXt-101 3D at 1.5/s)",
        "are max-pooled over a clip's span for training.", "",
        "## Summary beside HowTo100M as published", "",
        "| | ours | HowTo100M (Miech et al., 2019) |", "| --- | ---: | ---: |",
        *(_md_row(row) for row in summary_rows(n)),
        "", "## Funnel (tasks to clips) and why items were dropped", "",
        "| stage | in | kept | dropped, by reason |", "| --- | ---: | ---: | --- |",
        *(_md_row(row) for row in funnel_rows(n)),
        "", "## Features", "",
        *(f"- {md_text(line)}" if not line.startswith("WARNING") else f"- **{md_text(line)}**"
          for line in feature_lines(n)),
        "", "## Captions", "",
        *(f"- {md_text(k)} / {md_text(lang)}: {c:,} videos" for k, lang, c in n.caption_kinds),
        *(f"- source {md_text(s)}: {c:,} videos" for s, c in n.caption_sources.items()),
        "", "## Crawl generations", "",
        *(f"- {md_text(c['crawl_id'])}: every search failed; not a generation (no later crawl is compared with it)"
          if c.get("failed") else
          f"- {md_text(c['crawl_id'])}: {c['new_videos']:,} videos first seen, {c['gone']:,} found gone"
          + (f", {c['returned']:,} back" if c.get("returned") else "")
          + (f", {c['views_changed']:,} view counts changed since {md_text(c['compared_with'])}"
             if c["compared_with"] else "")
          + (f", {c['captions_changed']:,} of {c['captions_checked']:,} re-checked videos changed captions"
             if c["compared_with"] and c.get("captions_checked") else "")
          + (f" (started {time.strftime('%Y-%m-%d', time.gmtime(c['started_at']))})" if c["started_at"] else "")
          for c in n.crawls),
        "", "## Figures", "",
        *(f"### {title}\n\n![{title}]({name})\n" for name, (title, _) in FIGURES.items()),
        "## Caveats", "",
        "- Hours are sums of clip spans; HowTo100M's 134,472 h counts whole videos. Imported captions",
        "  overlap (rolling ASR lines), so their span sum can exceed the video length.",
        "- Videos imported from the HowTo100M release carry no caption kind or language (`unknown`).",
        "- The published figures are the paper's averages, not recomputed from the release.", "",
    ]  # fmt: skip
    return "\n".join(lines)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(n: ReportNumbers, made_at: str) -> str:
    figures = "".join(
        f'<figure><img src="{name}" alt="{html.escape(title)}"><figcaption>{html.escape(title)}</figcaption></figure>'
        for name, (title, _) in FIGURES.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dataset report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
figure{{margin:2em 0}}img{{max-width:100%}}figcaption{{color:#555}}</style></head><body>
<h1>Narrated instructional-video clips: dataset report</h1>
<p>Data root <code>{html.escape(n.root)}</code>, made {html.escape(made_at)}. The dataset card is
<a href="README.md">README.md</a>.</p>
<h2>Summary beside HowTo100M as published</h2>
{_table(("", "ours", "HowTo100M (Miech et al., 2019)"), summary_rows(n))}
<h2>Funnel</h2>
{_table(("stage", "in", "kept", "dropped, by reason"), funnel_rows(n))}
<h2>Features</h2>
{
        "".join(
            f"<p>{'<strong>' if line.startswith('WARNING') else ''}{html.escape(line)}"
            f"{'</strong>' if line.startswith('WARNING') else ''}</p>"
            for line in feature_lines(n)
        )
    }
<h2>Figures</h2>
{figures}
</body></html>
"""


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def check_report_out(root: DataRoot, out: Path) -> None:
    """Refuse (ExportRefused, naming --out) a report folder in the data root's own folders (its report/,
    the default, is fine), a file in its place, or one that cannot be written."""
    check_outside_root(root, out, allow=Path(root.url) / "report" if root.is_local else None)
    if out.exists() and not out.is_dir():
        raise ExportRefused(f"--out {out}: exists and is not a folder; remove it or choose another --out")
    if out.is_dir() and not made_by_report(out):
        marker = read_marker(out)
        if marker is not None:  # an export of another format: its marker is there, and says which
            raise ExportRefused(
                f"--out {out}: holds a {marker.get('format')} export, not a report; remove it or choose another --out"
            )
        raise ExportRefused(
            f"--out {out}: exists, is not empty and is not a report made by howto (no {MARKER}); its "
            "README.md and index.html would be replaced: remove it or choose another --out"
        )
    if out.is_dir():
        check_no_symlinks(out)
    check_writable(out)


def made_by_report(folder: Path) -> bool:
    """Whether a report may be written into `folder`: empty, marked as a report, or an unmarked report of an
    earlier version (only its own files, its page among them)."""
    names = {p.name for p in folder.iterdir()}
    if not names:
        return True
    marker = read_marker(folder)
    if marker is not None:
        return marker.get("format") == "report"
    own = {"README.md", "index.html", *FIGURES}
    return "index.html" in names and names <= own


def write_report(root: DataRoot, out: Path) -> dict[str, Any]:
    """Collect the numbers, draw the figures, write card and page; returns the paths and headline numbers.
    `out` is checked first (check_report_out), before any number is collected."""
    check_report_out(root, out)
    numbers = collect(root)
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, "report")
    made_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    written = []
    for name, (_, draw) in FIGURES.items():
        _write(out / name, draw(numbers))
        written.append(str(out / name))
    _write(out / "README.md", markdown(numbers, made_at).encode("utf-8"))
    _write(out / "index.html", page(numbers, made_at).encode("utf-8"))
    return {
        "card": str(out / "README.md"), "page": str(out / "index.html"), "figures": written,
        "clips": numbers.clips, "videos_with_clips": numbers.videos_with_clips,
        "means": {k: None if v is None else round(v, 3) for k, v in numbers.means.items()},
    }  # fmt: skip
