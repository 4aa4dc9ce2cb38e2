"""`howto export --split heldout` with no --heldout-fraction holds out what the root's model was trained
without: the fraction of the run `howto eval` takes, not a fixed 0.1."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app
from storage.layout import DataRoot
from tasks.train.config import TrainConfig
from tasks.train.prepare import build_pairs_shard, ready_shards
from tasks.train.run import train
from tasks.train.split import is_heldout
from tests.tasks.howto100m.release_files import VIDEO_A, VIDEO_B, VIDEO_C


def _keys(out: Path) -> set[str]:
    import webdataset as wds

    return {
        s["__key__"] for s in wds.WebDataset(sorted(str(p) for p in out.glob("*.tar")), shardshuffle=False)
    }


def test_split_defaults_to_the_trained_runs_heldout_fraction(imported: DataRoot, tmp_path: Path) -> None:
    """Trained with 0.3 held out (as `howto demo` trains): before, the export split at 0.1 and put held-out videos in `train`."""
    root = DataRoot.from_any(tmp_path / "root")
    shutil.copytree(imported.url, root.url)
    kept = (VIDEO_A, VIDEO_B, VIDEO_C)
    heldout = {v for v in kept if is_heldout(v, 0.3)}
    assert heldout and heldout != {v for v in kept if is_heldout(v, 0.1)}  # the two fractions differ here
    runner = CliRunner()
    base = ["export", "webdataset", "--per", "video", "--features", "none", "--data-root", root.url]
    # No run yet: training's default fraction (0.1), as before.
    before = runner.invoke(app, [*base, "--out", str(tmp_path / "none"), "--split", "train"])
    assert before.exit_code == 0, before.stdout + before.stderr
    assert _keys(tmp_path / "none") == {v for v in kept if not is_heldout(v, 0.1)}

    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    train(TrainConfig(text="learned", d=16, epochs=1, heldout_fraction=0.3, videos_per_batch=2, run_id="third",
                      device="cpu", min_word_count=1), root)  # fmt: skip
    for split, expected in (("heldout", heldout), ("train", set(kept) - heldout)):
        out = runner.invoke(app, [*base, "--out", str(tmp_path / split), "--split", split])
        assert out.exit_code == 0, out.stdout + out.stderr
        assert "held-out fraction 0.3, as run third trained with" in out.stderr
        assert _keys(tmp_path / split) == expected
    # A fraction given still wins.
    out = runner.invoke(
        app, [*base, "--out", str(tmp_path / "given"), "--split", "train", "--heldout-fraction", "0.1"]
    )
    assert out.exit_code == 0 and "held-out fraction" not in out.stderr
    assert _keys(tmp_path / "given") == {v for v in kept if not is_heldout(v, 0.1)}
