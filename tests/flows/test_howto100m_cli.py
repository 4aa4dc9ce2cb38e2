"""The CLI over a fabricated HowTo100M release: import, train with no network, export, report, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from flows.cli import app
from storage.layout import DataRoot
from storage.shards import list_markers, read_dataset
from tests.cpu import worker_threads
from tests.tasks.howto100m.release_files import (
    VIDEO_C,
    import_args,
    kill_after_the_first_shard,
    write_release,
    write_training_release,
)

runner = CliRunner()


def _import_args(release, root: Path) -> list[str]:  # type: ignore[no-untyped-def]
    return import_args(release, root, videos_per_shard=4)


def test_import_then_train_offline(tmp_path: Path) -> None:
    torch.set_num_threads(worker_threads())
    release = write_training_release(tmp_path / "release", n_videos=12, clips=8)
    root = tmp_path / "root"
    out = runner.invoke(app, _import_args(release, root))
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    assert summary["videos"] == 12 and summary["clips"] == 96 and summary["shards"] == 3
    # Progress on stderr, a line per shard here (a long import is not silent), stdout stays the JSON.
    progress = [line for line in out.stderr.splitlines() if line.startswith("progress: ")]
    assert progress == [f"progress: howto100m import: videos {n}/12" for n in (4, 8, 12)], out.stderr
    data = DataRoot.from_any(root)
    # the training stage pairs clips shard k with frame_features shard k: the import wrote both
    assert (
        [m.shard for m in list_markers(data, "clips")]
        == [m.shard for m in list_markers(data, "frame_features")]
        == [0, 1, 2]
    )
    out = runner.invoke(app, [
        "train", "--data-root", str(root), "--epochs", "1", "--d", "32", "--videos-per-batch", "4",
        "--clips-per-video", "8", "--heldout-fraction", "0.3", "--lr", "0.001",
    ])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "run run-" in out.stdout
    assert read_dataset(data, "clip_pairs").count_rows() == 96
    assert read_dataset(data, "train_metrics").count_rows() == 1


def test_export_and_report_commands(tmp_path: Path) -> None:
    release = write_release(tmp_path / "release")
    root = tmp_path / "root"
    assert runner.invoke(app, _import_args(release, root)).exit_code == 0
    out = runner.invoke(app, ["export", "webdataset", "--out", str(tmp_path / "wds"), "--per", "video",
                              "--category", "Food and Entertaining", "--data-root", str(root)])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["samples"] == 1
    assert json.loads(out.stdout)["features"] == "rows"  # per video, the default is the stored rows
    # Asked for what a per-video sample cannot carry, or for a category the data root lacks: one line,
    # exit 2, nothing written (it used to switch to rows silently, and export 0 samples with exit 0).
    for extra, needle in (
        (["--per", "video", "--features", "pooled"], "--features 'pooled': per video takes rows, none"),
        (["--category", "Nope"], "--category 'Nope': no clips of"),
    ):
        out = runner.invoke(app, ["export", "webdataset", "--out", str(tmp_path / "refused"), *extra,
                                  "--data-root", str(root)])  # fmt: skip
        assert out.exit_code == 2 and needle in out.stderr and "Traceback" not in out.output, out.output
        assert not (tmp_path / "refused").exists()
    out = runner.invoke(
        app,
        ["export", "howto100m", "--out", str(tmp_path / "rel"), "--no-features", "--data-root", str(root)],
    )
    assert out.exit_code == 0, out.output
    assert not (tmp_path / "rel" / "features_2d").exists() and (tmp_path / "rel" / "caption.json").is_file()
    out = runner.invoke(app, ["report", "--data-root", str(root)])
    assert out.exit_code == 0, out.output
    report = root / "report"
    assert {p.name for p in report.iterdir()} >= {"README.md", "index.html", "funnel.png", "crawls.png"}
    assert "| clips | 7 |" in (report / "README.md").read_text()


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    release = write_release(tmp_path / "release")
    args = _import_args(release, tmp_path / "root")
    missing = [a if a != str(release.captions) else str(tmp_path / "nope.json") for a in args]
    out = runner.invoke(app, missing)
    assert out.exit_code == 2 and "nope.json: no such file (--captions)" in out.stderr
    at = args.index("--features-2d") + 1  # a file where the folder of .npy files goes is named as such
    out = runner.invoke(app, [*args[:at], str(release.csv), *args[at + 1 :]])
    assert out.exit_code == 2 and f"{release.csv.name}: is a file, not a folder (--features-2d)" in out.stderr
    release.captions.write_text('{"nVbIUDjzWY4": {"start": [1.0], "end": [2.0], "text": ["a"]}, "x": ')
    out = runner.invoke(app, args)
    assert out.exit_code == 2 and out.stderr.count("\n") == 1 and "caption.json: character" in out.stderr
    release.csv.write_text("video,category\nabc,def\n")
    out = runner.invoke(app, args)
    assert out.exit_code == 2 and "no column(s) video_id" in out.stderr
    out = runner.invoke(
        app, ["export", "hf", "--out", str(tmp_path / "hf"), "--data-root", str(tmp_path / "nowhere")]
    )
    assert out.exit_code == 2 and "no data root at" in out.stderr


def test_captions_stage_leaves_imported_shards_alone(tmp_path: Path) -> None:
    from flows.fetch_captions import fetch_captions

    release = write_release(tmp_path / "release")
    root = tmp_path / "root"
    assert runner.invoke(app, _import_args(release, root)).exit_code == 0
    data = DataRoot.from_any(root)
    before = {m.shard: m.finished_at for m in list_markers(data, "clips")}
    summary = fetch_captions(data_root=str(root))
    assert summary["shards"] == 0
    assert {m.shard: m.finished_at for m in list_markers(data, "clips")} == before
    assert read_dataset(data, "clips").count_rows() == 7


def test_other_files_while_an_import_is_unfinished_are_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = write_release(tmp_path / "a"), write_release(tmp_path / "b")
    captions = json.loads(second.captions.read_text())
    captions.pop(VIDEO_C)  # other files: another import batch
    second.captions.write_text(json.dumps(captions))
    root = tmp_path / "root"
    with monkeypatch.context() as patch:
        kill_after_the_first_shard(patch)
        assert runner.invoke(app, _import_args(first, root)).exit_code == 130
    (plan,) = (root / "_plans" / "howto100m").glob("*.json")
    for extra in ([], ["--replace"]):
        out = runner.invoke(app, [*_import_args(second, root), *extra])
        assert out.exit_code == 2 and "Traceback" not in out.output, out.output
        assert out.stderr.count("\n") == 1 and out.stderr.startswith(
            f"error: {DataRoot.from_any(root).url}: "
        )
        assert f"batch {plan.stem}" in out.stderr and "has not finished" in out.stderr, out.stderr
    assert runner.invoke(app, _import_args(first, root)).exit_code == 0  # resumed to its end
    out = runner.invoke(app, [*_import_args(second, root), "--replace"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["first_shard"] == 2  # after the first import's 2 shards
