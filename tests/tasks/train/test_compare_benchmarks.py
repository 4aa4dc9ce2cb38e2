"""`howto train compare`'s benchmark table: CrossTask and YouCook2 scores of every run, mean ± sd over
seeds, the split said in the footer, scores recorded once and read back on a rerun."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from flows.cli import app
from storage.layout import DataRoot
from storage.shards import list_markers, read_shard
from tasks.demo.benchmarks import demo_benchmark_dir
from tasks.evaluation import run as eval_run
from tasks.features.config import ExtractFeaturesConfig
from tasks.features.recorded import VECTOR_FIELDS
from tasks.synthetic.training import step_texts, write_synthetic_root
from tasks.train.compare_benchmarks import (
    BenchmarkFiles,
    BenchmarkRow,
    RunScores,
    benchmark_table_lines,
    split_note,
)
from tasks.train.split import is_heldout
from tests.moto_s3 import moto_s3

N_STEPS = 12


def _run(run_id: str, **metrics: float) -> RunScores:
    return RunScores(run_id, dict(metrics), cached=False, seconds=0.0)


def test_benchmark_table_shows_mean_and_sd_over_seeds() -> None:
    rows = [
        BenchmarkRow("infonce", [
            _run("a", crosstask_recall=0.2, crosstask_chance=0.1, **{"youcook2_R@1": 0.1, "youcook2_R@5": 0.4,
                 "youcook2_R@10": 0.6, "youcook2_MedR": 6.0, "youcook2_queries": 40.0}),
            _run("b", crosstask_recall=0.4, crosstask_chance=0.3, **{"youcook2_R@1": 0.3, "youcook2_R@5": 0.6,
                 "youcook2_R@10": 0.8, "youcook2_MedR": 3.0, "youcook2_queries": 40.0}),
        ]),
        BenchmarkRow("shuffled (infonce)", [_run("c", crosstask_recall=0.25)]),
    ]  # fmt: skip
    lines = benchmark_table_lines(rows, [0, 1], "the 7 held-out demo videos")
    assert lines[1] == (
        "| method | CrossTask recall | YouCook2 R@1 | YouCook2 R@5 | YouCook2 R@10 | YouCook2 MedR |"
    )
    assert lines[2] == "|---|---|---|---|---|---|"
    assert lines[3] == "| infonce | 0.300 ± 0.100 | 0.200 ± 0.100 | 0.500 ± 0.100 | 0.700 ± 0.100 | 4.5 |"
    assert lines[4] == "| shuffled (infonce) | 0.250 ± 0.000 | - | - | - | - |"  # no YouCook2 numbers
    footer = lines[5]
    assert "seeds [0, 1]: the 7 held-out demo videos" in footer
    assert "CrossTask chance recall (random scores, same DP) = 0.200" in footer
    assert "YouCook2 40 step queries, chance R@5 = 0.125" in footer


def _release(base: Path, videos: list[str], val: set[str]) -> BenchmarkFiles:
    release = base / "crosstask"
    (release / "annotations").mkdir(parents=True)
    (release / "tasks_primary.txt").write_text(
        f"1\nsynthetic\nsyn://1\n{N_STEPS}\n{','.join(step_texts(N_STEPS))}\n\n"
    )
    (release / "videos.csv").write_text("".join(f"1,{v},syn://{v}\n" for v in videos))
    (release / "videos_val.csv").write_text("".join(f"1,{v},syn://{v}\n" for v in videos if v in val))
    (base / "videos").mkdir()
    (base / "youcookii_annotations_trainval.json").write_text("{}")
    return BenchmarkFiles(release, base / "youcookii_annotations_trainval.json", base / "videos", demo=True)


def test_split_note_says_when_the_demo_files_hold_out_other_videos(tmp_path: Path) -> None:
    videos = [f"v{i:03d}" for i in range(60)]
    files = _release(tmp_path, videos, {v for v in videos if is_heldout(v, 0.3)})
    same = split_note(files, 0.3)
    assert "held-out demo videos" in same and "heldout_fraction 0.3" in same and "WARNING" not in same
    other = split_note(files, 0.1)
    n_other = sum(is_heldout(v, 0.1) for v in videos)
    assert other.startswith("WARNING") and f"not the {n_other} that heldout_fraction 0.1 holds out" in other
    given = split_note(BenchmarkFiles(files.crosstask, files.youcook2, files.videos), 0.1)
    assert given.startswith("CrossTask split val") and "WARNING" not in given


def _write_benchmarks(root: DataRoot, fraction: float) -> Path:
    """The demo's layout where `howto demo` writes it for `root` (<root>/benchmarks/demo when local), from the
    synthetic clips (a clip is a step)."""
    base = demo_benchmark_dir(root)
    texts = step_texts(N_STEPS)
    spans: dict[str, list[tuple[int, float, float]]] = {}
    for marker in list_markers(root, "clips"):
        table = read_shard(root, "clips", marker.shard)
        assert table is not None
        for row in table.to_pylist():
            spans.setdefault(row["video_id"], []).append(
                (texts.index(row["text"]), row["start_ms"] / 1000, row["end_ms"] / 1000)
            )
    heldout = {v for v in spans if is_heldout(v, fraction)}
    files = _release(base, sorted(spans), heldout)
    for vid, steps in spans.items():
        (files.crosstask / "annotations" / f"1_{vid}.csv").write_text(
            "".join(f"{s + 1},{a:.3f},{b:.3f}\n" for s, a, b in steps)
        )
        (files.videos / f"{vid}.mp4").write_bytes(b"")  # never decoded: the root's features are reused
    database = {
        vid: {"subset": "validation" if vid in heldout else "training",
              "annotations": [{"segment": [a, b], "id": i, "sentence": texts[s]} for i, (s, a, b) in enumerate(steps)]}
        for vid, steps in spans.items()
    }  # fmt: skip
    files.youcook2.write_text(json.dumps({"database": database}))
    return base


@pytest.fixture
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_compare_scores_every_run_on_the_benchmarks_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    features = ExtractFeaturesConfig(random_weights=True).model_dump(mode="json", include=set(VECTOR_FIELDS))
    root = write_synthetic_root(
        str(tmp_path / "root"), n_videos=24, n_steps=N_STEPS, dim=64, features_config=features
    )
    _write_benchmarks(root, 0.3)
    scored: list[str] = []
    real = eval_run.crosstask_scores

    def counting(*args: Any, **kwargs: Any) -> Any:
        scored.append("crosstask")
        return real(*args, **kwargs)

    monkeypatch.setattr(eval_run, "crosstask_scores", counting)
    args = [
        "train", "compare", "--data-root", str(root.url), "--methods", "infonce", "--seeds", "0,1",
        "--epochs", "1", "--text", "learned", "--d", "32", "--videos-per-batch", "4", "--name", "b",
    ]  # fmt: skip
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    header = "| method | CrossTask recall | YouCook2 R@1 | YouCook2 R@5 | YouCook2 R@10 | YouCook2 MedR |"
    assert header in out.stdout and "| shuffled (infonce) | 0." in out.stdout
    assert "held-out demo videos" in out.stdout and "heldout_fraction 0.3" in out.stdout
    assert len(scored) == 4  # two methods (the control too) x two seeds
    saved = Path(root.path("train", "compare", "b"))
    assert header in (saved / "compare.md").read_text()
    record = json.loads((saved / "compare.json").read_text())["benchmarks"]
    assert [len(m["runs"]) for m in record["methods"].values()] == [2, 2]
    assert 0.0 <= record["methods"]["infonce"]["mean"]["youcook2_R@5"] <= 1.0
    # A rerun reads every run's scores back: nothing is scored again.
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert len(scored) == 4 and again.stdout.count(", cached, ") == 0 and again.stdout.count("(cached, ") == 4
    off = CliRunner().invoke(app, [*args, "--no-benchmarks"])
    assert off.exit_code == 0 and "CrossTask recall" not in off.stdout
    partial = CliRunner().invoke(app, [*args, "--youcook2", str(tmp_path / "x.json")])
    assert partial.exit_code == 2 and "--crosstask-release, --benchmark-videos: needed too" in partial.stderr


@pytest.mark.usefixtures("one_thread")
def test_compare_on_an_s3_root_scores_the_demo_benchmarks_written_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `howto demo` on an object store writes the benchmark files to a local temp folder (not under the root);
    # compare looked for them on local roots only, so `--benchmarks` refused and the table was never made.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # the local temp folder of this test
    (tmp_path / "tmp").mkdir()
    features = ExtractFeaturesConfig(random_weights=True).model_dump(mode="json", include=set(VECTOR_FIELDS))
    with moto_s3(tmp_path / "moto.log", "howto-compare"):
        root = write_synthetic_root(
            "s3://howto-compare/root", n_videos=24, n_steps=N_STEPS, dim=64, features_config=features
        )
        base = _write_benchmarks(root, 0.3)
        args = [
            "train", "compare", "--data-root", root.url, "--methods", "infonce", "--seeds", "0", "--control", "",
            "--epochs", "1", "--text", "learned", "--d", "32", "--videos-per-batch", "4", "--name", "b",
            "--benchmarks",
        ]  # fmt: skip
        out = CliRunner().invoke(app, args)
        assert out.exit_code == 0, out.output
        assert "| method | CrossTask recall |" in out.stdout and "held-out demo videos" in out.stdout
        assert str(base) in out.stdout
        # Another object-store root has no demo files of its own: the files of this one are not taken for it.
        other = DataRoot.from_any("s3://howto-compare/other")
        assert demo_benchmark_dir(other) != base
        refused = CliRunner().invoke(app, [*args[:3], other.url, *args[4:]])
        assert (
            refused.exit_code == 2
            and f"no demo benchmark files in {demo_benchmark_dir(other)}" in refused.stderr
        )
