"""An evaluation as lines of text: our numbers next to the papers' (recalls in percent)."""

from __future__ import annotations

from tasks.evaluation.audio import audio_lines
from tasks.evaluation.published import NOTE, PUBLISHED
from tasks.evaluation.results import EvalResult

RETRIEVAL = ("R@1", "R@5", "R@10", "MedR", "MeanR")


def _cell(value: float | None, metric: str) -> str:
    if value is None:
        return f"{'-':>7}"
    return (
        f"{value * 100:7.1f}" if metric.startswith("R@") or metric.startswith("recall") else f"{value:7.1f}"
    )


def _count(result: EvalResult, metric: str) -> str:
    for row in result.rows:
        if row["metric"] == metric:
            return f"{int(row['value'])} of {int(row['n'])}"
    return "?"


def result_lines(result: EvalResult, published: bool = True) -> list[str]:
    """The table `howto eval` prints (and `howto demo` ends with)."""
    cached = " (recorded earlier: nothing recomputed)" if result.cached else ""
    lines = [
        f"{result.benchmark} {result.split}: checkpoint {result.checkpoint.path} (run {result.checkpoint.run_id}){cached}"
    ]
    if result.benchmark == "crosstask":
        lines += _crosstask(result)
    else:
        lines += _retrieval(result) + audio_lines(result.rows)
    if published and result.benchmark in PUBLISHED:
        lines.append(f"  {NOTE}:")
        for p in PUBLISHED[result.benchmark]:
            keys = ("recall",) if result.benchmark == "crosstask" else RETRIEVAL
            cells = "".join(f"{'-':>7}" if k not in p.metrics else f"{p.metrics[k]:7.1f}" for k in keys)
            lines.append(f"  {p.method:<42}{cells}   {p.where}")
    return lines


def _retrieval(result: EvalResult) -> list[str]:
    n = next((int(r["n"]) for r in result.rows if r["metric"] == "R@1"), 0)
    facts = [f"{n} queries, one score matrix over all pairs"]
    candidates = result.value("candidates", None)
    if candidates is not None:  # MSR-VTT: whole videos, each once however many sentences name it
        facts[0] = f"{n} queries against {int(candidates)} videos, one score matrix"
    for metric, label in (("videos_missing", "videos missing"), ("videos_failed", "failed to decode")):
        if any(r["metric"] == metric for r in result.rows):
            facts.append(f"{label} {_count(result, metric)}")
    facts.append(f"queries tied with their answer {_count(result, 'tied_queries')}")
    lines = ["  " + "; ".join(facts), "  recall in %" + " " * 31 + "".join(f"{k:>7}" for k in RETRIEVAL)]
    for rule, label in (
        ("against", "this checkpoint (ties against the model)"),
        ("optimistic", "  same, ties counted optimistically"),
    ):
        cells = "".join(_cell(result.value(k, rule), k) for k in RETRIEVAL)
        lines.append(f"  {label:<42}{cells}")
    return lines


def _crosstask(result: EvalResult) -> list[str]:
    lines = [
        f"  videos {_count(result, 'videos')}; tasks {_count(result, 'tasks')}; videos missing {_count(result, 'videos_missing')}"
    ]
    lines.append("  per task (recall %, annotated steps):")
    for row in result.rows:
        if row["metric"].startswith("recall:"):
            lines.append(f"    {row['metric'][7:]:<12}{row['value'] * 100:6.1f}  ({row['n']} steps)")
    avg, chance = result.value("recall", None), result.value("recall_chance", None)
    lines.append(f"  {'average recall over tasks (%)':<42}{_cell(avg, 'recall')}")
    if chance is not None:
        lines.append(f"  {'  chance (random scores, same DP)':<42}{_cell(chance, 'recall')}")
    return lines
