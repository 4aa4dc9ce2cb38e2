"""The report's figures as PNG bytes (matplotlib, Agg): every axis says what it counts and in which unit."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tasks.figures import figure_png, new_figure
from tasks.report.numbers import (
    CLIPS_BIN,
    CLIPS_MAX,
    DURATION_BIN_S,
    DURATION_MAX_S,
    WORDS_MAX,
    ReportNumbers,
)

OURS, PAPER_COLOUR, DROP = "#1f77b4", "#d62728", "#bbbbbb"


def _figure(width: float, height: float, cols: int = 1) -> tuple[Any, Any]:
    return new_figure(width, height, cols)


def _png(fig: Any) -> bytes:
    return figure_png(fig, dpi=100)


def _integer_ticks(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _empty(ax: Any, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in this data root", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def funnel(n: ReportNumbers) -> bytes:
    """Left: what each stage took in and kept (log scale); right: what it dropped, by reason."""
    fig, (left, right) = _figure(13, 4.5, cols=2)
    stages = list(reversed(n.funnel))
    labels = [f"{s.name}\n({s.unit})" for s in stages]
    left.barh(labels, [max(s.total, 0.8) for s in stages], color=DROP, label="in")
    left.barh(labels, [max(s.kept, 0.8) for s in stages], color=OURS, label="kept")
    for i, s in enumerate(stages):
        left.text(max(s.total, 1) * 1.1, i, f"{s.kept:,} of {s.total:,}", va="center", fontsize=8)
    left.set_xscale("log")
    left.set(title="funnel: items in and kept per stage", xlabel="count (log scale; unit beside each stage)")
    left.set_xlim(0.8, max([s.total for s in stages] + [1]) * 30)
    left.legend(loc="lower right")
    reasons = sorted(
        {r for s in stages for r in s.drops}, key=lambda r: -sum(s.drops.get(r, 0) for s in stages)
    )
    if not reasons:
        _empty(right, "drops")
    else:
        shown = reasons[:10]
        offsets = [0.0] * len(stages)
        from matplotlib import colormaps

        colours = colormaps["tab20"]
        for k, reason in enumerate(shown + (["other"] if len(reasons) > 10 else [])):
            values = [sum(v for r, v in s.drops.items() if r not in shown) if reason == "other" else s.drops.get(reason, 0)
                      for s in stages]  # fmt: skip
            right.barh(labels, values, left=offsets, color=colours(k % 20), label=reason)
            offsets = [o + v for o, v in zip(offsets, values, strict=True)]
        right.set(title="dropped, by reason", xlabel="count (unit beside each stage)")
        _integer_ticks(right.xaxis)
        right.legend(fontsize=7, loc="lower right")
    return _png(fig)


def _histogram(bins: list[tuple[float, int]], width: float, *, title: str, xlabel: str, ylabel: str,
               ours: float | None, paper: float, paper_label: str, last_label: str | None) -> bytes:  # fmt: skip
    fig, ax = _figure(7, 4)
    if not bins:
        _empty(ax, "clips")
        return _png(fig)
    ax.bar(
        [b for b, _ in bins], [c for _, c in bins], width=width * 0.9, align="edge", color=OURS, label="ours"
    )
    if ours is not None:
        ax.axvline(ours, color="black", linestyle="-", label=f"our mean {ours:.1f}")
    ax.axvline(paper, color=PAPER_COLOUR, linestyle="--", label=paper_label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if last_label:
        ax.text(bins[-1][0], 0, last_label, fontsize=7, va="bottom")
    ax.legend()
    return _png(fig)


def clips_per_video(n: ReportNumbers) -> bytes:
    return _histogram(
        [(float(b), c) for b, c in n.clips_per_video], CLIPS_BIN,
        title="clips per video", xlabel=f"clips in a video (bins of {CLIPS_BIN}; last bin {CLIPS_MAX}+)",
        ylabel="videos", ours=n.means["clips_per_video"], paper=n.paper["clips_per_video"],
        paper_label=f"HowTo100M ~{n.paper['clips_per_video']:.0f}", last_label=None,
    )  # fmt: skip


def clip_duration(n: ReportNumbers) -> bytes:
    return _histogram(
        n.durations, DURATION_BIN_S, title="clip duration",
        xlabel=f"clip duration (s; bins of {DURATION_BIN_S} s; last bin {DURATION_MAX_S:.0f} s+)", ylabel="clips",
        ours=n.means["clip_duration_s"], paper=n.paper["clip_duration_s"],
        paper_label=f"HowTo100M ~{n.paper['clip_duration_s']:.0f} s", last_label=None,
    )  # fmt: skip


def words_per_clip(n: ReportNumbers) -> bytes:
    return _histogram(
        [(float(w) - 0.5, c) for w, c in n.words], 1.0, title="words per clip",
        xlabel=f"words in a clip's caption (last bar {WORDS_MAX}+)", ylabel="clips",
        ours=n.means["words_per_clip"], paper=n.paper["words_per_clip"],
        paper_label=f"HowTo100M ~{n.paper['words_per_clip']:.0f}", last_label=None,
    )  # fmt: skip


def hours_by_category(n: ReportNumbers) -> bytes:
    fig, ax = _figure(8, max(3.0, 0.35 * len(n.hours_by_category) + 1.2))
    if not n.hours_by_category:
        _empty(ax, "clips")
        return _png(fig)
    rows = list(reversed(n.hours_by_category[:20]))
    ax.barh([c for c, _ in rows], [h for _, h in rows], color=OURS)
    ax.set(title="hours per level-1 category", xlabel="hours (sum of clip spans)")
    return _png(fig)


def captions(n: ReportNumbers) -> bytes:
    """Kept caption tracks by kind and language; beside it, where each video's captions came from."""
    fig, (left, right) = _figure(11, 3.8, cols=2)
    if n.caption_kinds:
        rows = list(reversed(n.caption_kinds[:15]))
        left.barh([f"{k} / {lang}" for k, lang, _ in rows], [c for *_, c in rows], color=OURS)
        left.set(title="kept caption tracks: kind / language", xlabel="videos")
        _integer_ticks(left.xaxis)
    else:
        _empty(left, "kept caption tracks")
    if n.caption_sources:
        items = sorted(n.caption_sources.items(), key=lambda kv: kv[1])
        right.barh([k for k, _ in items], [v for _, v in items], color=OURS)
        right.set(title="where captions came from (all videos)", xlabel="videos")
        _integer_ticks(right.xaxis)
    else:
        _empty(right, "videos")
    return _png(fig)


def crawls(n: ReportNumbers) -> bytes:
    fig, ax = _figure(8, 4)
    if not n.crawls:
        _empty(ax, "crawls")
        return _png(fig)
    labels = [
        f"{c['crawl_id']}\n{time.strftime('%Y-%m-%d', time.gmtime(c['started_at'])) if c['started_at'] else '?'}"
        for c in n.crawls
    ]
    x = list(range(len(labels)))
    ax.bar(
        [i - 0.2 for i in x],
        [c["new_videos"] for c in n.crawls],
        width=0.4,
        color=OURS,
        label="videos first seen",
    )
    ax.bar(
        [i + 0.2 for i in x],
        [c["gone"] for c in n.crawls],
        width=0.4,
        color=PAPER_COLOUR,
        label="videos found gone",
    )
    ax.set_xticks(x, labels, fontsize=8)
    ax.set(title="crawl generations and imports (start date, UTC)", xlabel="crawl id", ylabel="videos")
    ax.set_xlim(-0.8, max(len(labels), 3) - 0.2)
    _integer_ticks(ax.yaxis)
    ax.legend()
    return _png(fig)


def paper_vs_ours(n: ReportNumbers) -> bytes:
    fig, axes = _figure(11, 3.6, cols=3)
    for ax, (key, title, unit) in zip(axes, (("clips_per_video", "clips per video", "clips"),
                                             ("clip_duration_s", "clip duration", "seconds"),
                                             ("words_per_clip", "words per clip", "words")), strict=True):  # fmt: skip
        mean, median = n.means[key], n.medians[key]
        if mean is None or median is None:  # no clips: only the paper's bar, not two bars of zero
            bars = ax.bar(
                ["HowTo100M\n(paper)", "ours\n(no clips)"], [n.paper[key], 0.0], color=[PAPER_COLOUR, OURS]
            )
            ax.bar_label(bars, labels=[f"{n.paper[key]:.1f}", "-"], fontsize=8)
        else:
            bars = ax.bar(["HowTo100M\n(paper)", "ours\n(mean)", "ours\n(median)"], [n.paper[key], mean, median],
                          color=[PAPER_COLOUR, OURS, OURS])  # fmt: skip
            ax.bar_label(bars, fmt="%.1f", fontsize=8)
        ax.set(title=title, ylabel=unit)
    return _png(fig)


FIGURES: dict[str, tuple[str, Callable[[ReportNumbers], bytes]]] = {
    "funnel.png": ("Funnel: tasks to clips, with drop reasons", funnel),
    "paper_vs_ours.png": ("Published HowTo100M figures beside ours", paper_vs_ours),
    "clips_per_video.png": ("Clips per video", clips_per_video),
    "clip_duration.png": ("Clip duration", clip_duration),
    "words_per_clip.png": ("Words per clip", words_per_clip),
    "hours_by_category.png": ("Hours per category", hours_by_category),
    "captions.png": ("Caption kinds, languages and sources", captions),
    "crawls.png": ("Crawl generations over time", crawls),
}
