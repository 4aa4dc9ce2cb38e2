"""Identity embeddings score perfectly on fabricated files in each official format (the whole path:
file readers, pooling, one score matrix, recording in eval_metrics and the model card)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from storage.layout import DataRoot
from storage.shards import read_dataset
from tasks.evaluation import run as eval_run
from tasks.evaluation.features import BenchmarkFeatures
from tasks.evaluation.results import EvalResult
from tasks.evaluation.run import Setup, eval_crosstask, eval_msrvtt, eval_youcook2
from tests.tasks.evaluation.identity import DIM, IdentityEmbedder, fake_video, vec

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "benchmarks"
SENTENCES = [f"do step number {i} with the {w}" for i, w in enumerate(["pan", "knife", "bowl", "oven"] * 5)]


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(DataRoot.from_any(str(tmp_path / "root")), embedder=IdentityEmbedder())


def _perfect(result: EvalResult, n: int) -> None:
    assert result.value("R@1") == 1.0 and result.value("MedR") == 1.0 and result.value("MeanR") == 1.0
    assert next(r["n"] for r in result.rows if r["metric"] == "R@1") == n
    assert result.value("tied_queries", None) == 0


def test_youcook_pkl(setup: Setup, tmp_path: Path) -> None:
    items = [
        {"id": f"vid{i}", "2d": vec(s) * 3, "3d": np.ones(DIM), "caption": s} for i, s in enumerate(SENTENCES)
    ]
    pkl = tmp_path / "youcook_val.pkl"
    pkl.write_bytes(pickle.dumps(items))
    result = eval_youcook2(setup, pkl=pkl)
    _perfect(result, 20)
    table = read_dataset(setup.root, "eval_metrics").to_table().to_pylist()
    assert {r["benchmark"] for r in table} == {"youcook2"} and {r["tie_rule"] for r in table} >= {
        "against",
        "optimistic",
    }
    card = json.loads(Path(result.card).read_text())
    assert card["evaluations"]["youcook2/validation"]["metrics"]["R@1"] == 1.0
    again = eval_youcook2(setup, pkl=pkl)
    assert again.cached and again.rows == result.rows


def test_msrvtt_csv_and_pth(setup: Setup, tmp_path: Path) -> None:
    csv = tmp_path / "MSRVTT_JSFUSION_test.csv"
    csv.write_text("key,vid_key,video_id,sentence\n" + "".join(
        f"ret{i},msr{7000 + i},video{7000 + i},{s}\n" for i, s in enumerate(SENTENCES)
    ))  # fmt: skip
    pth = tmp_path / "MSRVTT_JSFUSION_test.pth"
    feats = {f"video{7000 + i}": torch.from_numpy(vec(s) * 2) for i, s in enumerate(SENTENCES)}
    torch.save({"2d": feats, "3d": {k: torch.ones(DIM) for k in feats}}, pth)
    _perfect(eval_msrvtt(setup, csv, features_pth=pth), 20)


def test_msrvtt_with_several_sentences_a_video_ranks_each_video_once(
    setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A csv giving each video 4 sentences (as the full MSR-VTT test set gives 20) put each video among the
    candidates 4 times: the copies tied with the answer, so the identity model scored R@1 0 (ties against
    the model) and R@5 0.25 among 20 candidates. Now the 5 videos are the candidates, each once."""
    videos = {f"video{7000 + v}": SENTENCES[4 * v : 4 * v + 4] for v in range(5)}
    csv = tmp_path / "MSRVTT_full_test.csv"
    csv.write_text("key,vid_key,video_id,sentence\n" + "".join(
        f"ret{v}_{i},msr{v},{vid},{s}\n" for v, (vid, said) in enumerate(videos.items()) for i, s in enumerate(said)
    ))  # fmt: skip
    # A video's features: the sum of its sentences' vectors, which each of them finds first.
    pth = tmp_path / "MSRVTT_full_test.pth"
    feats = {vid: torch.from_numpy(sum(vec(s) for s in said)) for vid, said in videos.items()}
    torch.save({"2d": feats, "3d": {k: torch.ones(DIM) for k in feats}}, pth)
    from_pth = eval_msrvtt(setup, csv, features_pth=pth)
    _perfect(from_pth, 20)
    assert from_pth.value("candidates", None) == 5
    # The raw-video route pools each video over its whole length: its sentences' rows one after another.
    fakes = {
        vid: fake_video(20, [(5 * i, 5 * i + 5, s) for i, s in enumerate(said)])
        for vid, said in videos.items()
    }
    monkeypatch.setattr(eval_run, "benchmark_features", lambda *a, **k: BenchmarkFeatures(fakes))
    from_videos = eval_msrvtt(setup, csv, videos_dir=_videos_dir(tmp_path, list(videos)))
    _perfect(from_videos, 20)
    assert from_videos.value("candidates", None) == 5


def _videos_dir(tmp_path: Path, ids: list[str]) -> Path:
    folder = tmp_path / "videos" / "validation" / "212"  # nested, as the YouCook2 download is
    folder.mkdir(parents=True)
    for vid in ids:
        (folder / f"{vid}.mp4").write_bytes(b"placeholder: features are fabricated")
    return tmp_path / "videos"


def test_youcook2_annotations_and_videos(
    setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real excerpt's validation video plus fabricated ones in the same format.
    annotations = json.loads((FIXTURES / "youcook2" / "youcookii_annotations_trainval.json").read_text())
    for v in range(3):
        annotations["database"][f"fake{v}"] = {
            "duration": 60.0, "subset": "validation", "recipe_type": "101", "video_url": "",
            "annotations": [{"segment": [4 + 10 * i, 8 + 10 * i], "id": i, "sentence": f"{s} {v}"}
                            for i, s in enumerate(SENTENCES[:5])],
        }  # fmt: skip
    path = tmp_path / "youcookii_annotations_trainval.json"
    path.write_text(json.dumps(annotations))
    database = annotations["database"]
    val = {vid: e for vid, e in database.items() if e["subset"] == "validation"}
    fakes = {
        vid: fake_video(
            e["duration"], [(a["segment"][0], a["segment"][1], a["sentence"]) for a in e["annotations"]]
        )
        for vid, e in val.items()
    }
    # "9GX8f5EwwE4" has touching segments ([25, 37], [37, 50]): pooling reaches one row past the end,
    # so leave a one-second gap in its fabricated rows to keep the identity exact.
    fakes["9GX8f5EwwE4"] = fake_video(
        241.64,
        [
            (a["segment"][0] + 1, a["segment"][1] - 1, a["sentence"])
            for a in val["9GX8f5EwwE4"]["annotations"]
        ],
    )
    monkeypatch.setattr(eval_run, "benchmark_features", lambda *a, **k: BenchmarkFeatures(fakes))
    videos = _videos_dir(tmp_path, list(val))
    result = eval_youcook2(setup, annotations=path, videos_dir=videos)
    _perfect(result, 13 + 15)
    assert result.value("videos_missing", None) == 0


def test_crosstask_release_and_videos(setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = tmp_path / "crosstask_release"
    (release / "annotations").mkdir(parents=True)
    (release / "tasks_primary.txt").write_text((FIXTURES / "crosstask" / "tasks_primary.txt").read_text())
    cards = {"23521": 6, "59684": 5}
    steps = {
        t: c.split("\n")[4].split(",")
        for t, c in zip(cards, (release / "tasks_primary.txt").read_text().split("\n\n"), strict=True)
    }
    rows, fakes = [], {}
    for task, n_steps in cards.items():
        for v in range(4):
            vid = f"{task[:2]}vid{v}"
            shown = [s for s in range(1, n_steps + 1) if (s + v) % 4]  # each video skips some steps
            spans = [(s, 5.0 + 6 * i, 8.5 + 6 * i) for i, s in enumerate(shown)]
            (release / "annotations" / f"{task}_{vid}.csv").write_text(
                "".join(f"{s},{a},{b}\n" for s, a, b in spans)
            )
            fakes[vid] = fake_video(60, [(a, b, steps[task][s - 1]) for s, a, b in spans])
            rows.append(f"{task},{vid},https://www.youtube.com/watch?v={vid}\n")
    (release / "videos.csv").write_text("".join(rows))
    (release / "videos_val.csv").write_text("".join(r for r in rows if "vid3" in r))
    monkeypatch.setattr(eval_run, "benchmark_features", lambda *a, **k: BenchmarkFeatures(fakes))
    videos = _videos_dir(tmp_path, list(fakes))
    result = eval_crosstask(setup, release, videos, split="all", window_s=0.5, chance_draws=3)
    assert result.value("recall", None) == 1.0
    assert result.value("recall:23521", None) == 1.0 and result.value("recall:59684", None) == 1.0
    assert result.value("recall_chance", None) < 0.5
    val = eval_crosstask(setup, release, videos, split="val", window_s=0.5, chance_draws=0)
    assert val.value("videos", None) == 2
    # The zero-shot protocol keeps n_train videos per task for training: with 2 of 3, one is test.
    test = eval_crosstask(setup, release, videos, split="test", n_train=2, window_s=0.5, chance_draws=0)
    assert test.value("videos", None) == 2 and test.value("recall", None) == 1.0
