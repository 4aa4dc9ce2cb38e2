"""What a run leaves for people: the loss/recall plot and model_card.json (with its benchmark results)."""

from __future__ import annotations

import json
from typing import Any

from storage.atomic import atomic_write_bytes
from storage.layout import DataRoot
from tasks.figures import figure_png, new_figure
from tasks.train.checkpoints import read_model_card, run_dir


def plot_png(rows: list[dict[str, Any]]) -> bytes:
    """Training loss and held-out R@1/5/10 per epoch, side by side."""
    epochs = [r["epoch"] for r in rows]
    fig, (left, right) = new_figure(10, 4, cols=2)
    left.plot(epochs, [r["loss"] for r in rows], marker="o")
    left.set(title="training loss", xlabel="epoch", ylabel="loss")
    for key, label in (("r_at_1", "R@1"), ("r_at_5", "R@5"), ("r_at_10", "R@10")):
        right.plot(epochs, [r[key] for r in rows], marker="o", label=label)
    candidates = rows[-1]["candidates"] if rows else 0
    right.set(
        title=f"held-out text->video recall ({candidates} clips)",
        xlabel="epoch",
        ylabel="recall",
        ylim=(0, 1),
    )
    right.legend()
    return figure_png(fig)


def write_report(
    root: DataRoot, run_id: str, rows: list[dict[str, Any]], card: dict[str, Any]
) -> dict[str, str]:
    """Write loss_recall.png and model_card.json into the run's directory; returns their paths."""
    base = run_dir(root, run_id)
    plot = f"{base}/loss_recall.png"
    card_path = f"{base}/model_card.json"
    atomic_write_bytes(root, plot, plot_png(rows))
    atomic_write_bytes(root, card_path, json.dumps(card, indent=1, sort_keys=True, default=str).encode())
    return {"plot": plot, "model_card": card_path}


def read_card(root: DataRoot, run_id: str) -> dict[str, Any] | None:
    path = f"{run_dir(root, run_id)}/model_card.json"
    return read_model_card(root, path) if root.exists(path) else None


def add_evaluation(root: DataRoot, run_id: str, key: str, entry: dict[str, Any]) -> str:
    """Record one benchmark evaluation under the card's "evaluations" (by "benchmark/split"); returns the
    card's path. A run without a card yet (still training) gets a card holding only its evaluations."""
    card = read_card(root, run_id) or {"run_id": run_id}
    card.setdefault("evaluations", {})[key] = entry
    path = f"{run_dir(root, run_id)}/model_card.json"
    atomic_write_bytes(root, path, json.dumps(card, indent=1, sort_keys=True, default=str).encode())
    return path
