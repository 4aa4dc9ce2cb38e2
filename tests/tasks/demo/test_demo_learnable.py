"""The pictures carry the narration's meaning: a linear map from words to thumbnails retrieves held-out steps."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from tasks.demo.videos import DemoVideo
from tasks.demo.world import World


def _thumbnails(video: DemoVideo) -> np.ndarray:
    """All frames at 2 fps as 16x12 RGB thumbnails (one ffmpeg call per video)."""
    assert video.path is not None
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(video.path), "-vf", "fps=2,scale=16:12",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(-1, 16 * 12 * 3).astype(np.float64) / 255


@pytest.mark.slow
def test_words_predict_step_pictures_on_held_out_videos(demo_world: World) -> None:
    rows = []  # (video id, words of the step, thumbnail in the middle of the step)
    for v in demo_world.usable:
        thumbs = _thumbnails(v)
        for s in v.segments:
            if s.step is not None:
                rows.append((v.id, s.text, thumbs[min(len(thumbs) - 1, (s.start_ms + s.end_ms) // 1000)]))
    vocab = {
        t: i
        for i, t in enumerate(sorted({t for _, txt, _ in rows for t in re.findall(r"[a-z]+", txt.lower())}))
    }
    x = np.zeros((len(rows), len(vocab)))
    for r, (_, txt, _) in enumerate(rows):
        x[r, [vocab[t] for t in re.findall(r"[a-z]+", txt.lower())]] = 1
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.stack([f for *_, f in rows])
    y -= y.mean(0)
    ids = sorted({r[0] for r in rows})
    rng = np.random.default_rng(0)
    rng.shuffle(ids)
    train = np.array([r[0] in set(ids[: len(ids) // 2]) for r in rows])
    w = np.linalg.solve(x[train].T @ x[train] + np.eye(len(vocab)), x[train].T @ y[train])  # ridge
    pred, truth = x[~train] @ w, y[~train]
    pred /= np.linalg.norm(pred, axis=1, keepdims=True)
    truth /= np.linalg.norm(truth, axis=1, keepdims=True)
    hits5 = []
    for i in range(len(pred)):  # rank the true picture among 50: itself and 49 other held-out steps
        others = rng.choice([j for j in range(len(pred)) if j != i], 49, replace=False)
        sims = truth[[i, *others]] @ pred[i]
        hits5.append((sims > sims[0]).sum() < 5)
    recall5 = float(np.mean(hits5))
    print(f"held-out text->picture R@5 among 50: {recall5:.2f} (chance 0.10), {len(pred)} steps")
    assert recall5 > 0.5
