"""Weights and checkpoint files that are not what a command takes (random bytes, an empty file, another
stage's checkpoint): one `error: FILE: not a KIND checkpoint (REASON)` line, exit 2, never a traceback or
click's bare "Aborted.", in seconds (before Prefect starts), and no work folders left in the data root."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import torch
import typer
from prefect import flow
from typer.testing import CliRunner

from flows.cli import app
from flows.cli_errors import HowtoGroup
from models.torch_files import NotACheckpoint
from storage.layout import DataRoot
from storage.shards import write_shard
from tasks.audio.fac_checkpoint import FAC_CHECKPOINT, load_fac
from tasks.features.config import ExtractFeaturesConfig
from tasks.features.stage import features_shard
from tasks.youtube.access import YoutubeAccess
from tests.storage.catalog_data import rows_table

runner = CliRunner()


def _one_line(result: Any, start: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {start}"), lines[0]
    assert "Traceback" not in result.stderr and "Aborted" not in result.output
    return lines[0]


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    garbage, empty = tmp_path / "garbage.pth", tmp_path / "empty.pth"
    garbage.write_bytes(bytes(range(256)) * 64)
    empty.write_bytes(b"")
    return {"garbage": garbage, "empty": empty}


@pytest.fixture()
def videos_root(tmp_path: Path) -> DataRoot:
    """One finished `videos` shard with one kept video: the features and audio stages would start."""
    root = DataRoot.from_any(tmp_path / "data")
    video = {"video_id": "a" * 11, "keep": True, "status": "ok", "crawl_id": "crawl-0000"}
    write_shard(
        root, "videos", 0, rows_table("videos", [video]), config_hash="h", code_version="x", rows_in=1
    )
    return root


def test_features_and_audio_refuse_files_that_are_not_weights(
    files: dict[str, Path], videos_root: DataRoot
) -> None:
    reasons = {"garbage": "(not a file torch.save wrote", "empty": "(empty file)"}
    for name, path in files.items():
        started = time.monotonic()
        features = runner.invoke(
            app,
            [
                "features",
                "run",
                "--data-root",
                videos_root.url,
                "--random-weights",
                "--resnet-weights",
                str(path),
            ],
        )
        line = _one_line(features, f"{path}: not a ResNet-152 checkpoint ")
        assert reasons[name] in line
        audio = runner.invoke(
            app,
            [
                "audio",
                "run",
                "--data-root",
                videos_root.url,
                "--audio-encoder",
                "cnn14",
                "--audio-weights",
                str(path),
            ],
        )
        assert reasons[name] in _one_line(audio, f"{path}: not a PANNs Cnn14 checkpoint ")
        assert time.monotonic() - started < 20  # refused up front, not after a shard and its retry
    assert not Path(videos_root.path("_work")).exists()
    assert not Path(videos_root.path("frame_features")).exists()


def test_a_shard_whose_weights_do_not_load_leaves_no_work_folder_and_is_not_retried(
    files: dict[str, Path], videos_root: DataRoot
) -> None:
    """The shard task on its own (as a worker runs it, without the flow's up-front check)."""
    cfg = ExtractFeaturesConfig(models=("resnet152",), resnet_weights=str(files["garbage"]))

    @flow
    def one_shard() -> Any:
        return features_shard(videos_root.url, 0, cfg, YoutubeAccess())

    started = time.monotonic()
    with pytest.raises(NotACheckpoint, match="garbage.pth: not a ResNet-152 checkpoint"):
        one_shard()
    assert time.monotonic() - started < 25  # no retry 30 s later: the same file would fail again
    assert not Path(videos_root.path("_work", "frame_features")).exists()


def test_eval_refuses_checkpoints_that_are_not_joint_embeddings(
    files: dict[str, Path], videos_root: DataRoot, tmp_path: Path
) -> None:
    fac = Path(videos_root.path(*FAC_CHECKPOINT.split("/")))
    fac.parent.mkdir(parents=True)
    torch.save({"weights": {"vis_embd.weight": torch.zeros(2, 2)}, "dims": [2, 2, 2], "graph": "fac"}, fac)
    garbage_pt = tmp_path / "garbage.pt"
    garbage_pt.write_bytes(files["garbage"].read_bytes())
    empty_pt = tmp_path / "empty.pt"
    empty_pt.write_bytes(b"")
    expected = {
        files["garbage"]: "(not a file torch.save wrote",
        garbage_pt: "(not a file torch.save wrote",
        empty_pt: "(empty file)",
        fac: "(it is the FAC model of `howto audio fac`",
    }
    for path, reason in expected.items():
        result = runner.invoke(
            app, ["eval", "heldout", "--data-root", videos_root.url, "--checkpoint", str(path)]
        )
        assert reason in _one_line(result, f"{path}: not a joint embedding checkpoint "), path
    # The FAC checkpoint the heldout evaluation reads by itself: cut short, it is named, not a KeyError.
    fac.write_bytes(fac.read_bytes()[:100])
    with pytest.raises(NotACheckpoint, match=r"fac\.pt: not a FAC checkpoint \(a damaged zip file"):
        load_fac(videos_root)
    torch.save({"weights": {}}, fac)
    with pytest.raises(NotACheckpoint, match=r"fac\.pt: not a FAC checkpoint \(no 'dims', 'graph'"):
        load_fac(videos_root)


def test_an_eof_error_is_a_bug_with_its_traceback_not_aborted() -> None:
    """click reads an EOFError as Ctrl-D at a prompt and prints a bare "Aborted."; this CLI has no prompt."""
    group = typer.Typer(cls=HowtoGroup)

    @group.command("read")
    def read() -> None:
        raise EOFError("Ran out of input")

    @group.command("other")
    def other() -> None:  # a second command keeps `read` a subcommand
        pass

    result = runner.invoke(group, ["read"])
    assert result.exit_code == 1 and "Aborted" not in result.output
    assert isinstance(result.exception, RuntimeError) and isinstance(result.exception.__cause__, EOFError)
    assert "Ran out of input" in str(result.exception)
