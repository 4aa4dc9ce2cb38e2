"""The train_embedding flow on a synthetic root: pairs and MiniLM caches per shard, run, rerun is free."""

from __future__ import annotations

from pathlib import Path

import torch
from typer.testing import CliRunner

from flows.cli import app
from flows.train_embedding import train_embedding
from storage.layout import DataRoot
from storage.shards import list_markers, read_shard
from tasks.synthetic.training import write_synthetic_root
from tasks.train.config import TrainConfig
from tests.cpu import worker_threads


def test_flow_trains_with_minilm_and_reruns_from_cache(tmp_path: Path) -> None:
    torch.set_num_threads(worker_threads())
    root = write_synthetic_root(tmp_path, n_videos=16, n_steps=12, clips_per_video=4, dim=128)
    cfg = TrainConfig(d=32, epochs=1, heldout_fraction=0.3, videos_per_batch=4, lr=1e-3)
    first = train_embedding(cfg, str(tmp_path))
    assert first["shards"] == 2 and first["rows_out"] == 64 and first["epochs"] == 1
    assert first["precision"] == "fp32"  # the config's default, as the summary (and `howto demo`) reports
    cached = read_shard(root, "text_embeddings", 0)
    assert cached is not None and cached.num_rows == 32
    assert len(cached.column("vector")[0].as_py()) == 384
    assert {m.extra.get("unique_texts", 0) for m in list_markers(root, "text_embeddings")} <= set(
        range(1, 13)
    )
    second = train_embedding(cfg, str(tmp_path))
    assert second["shards_cached"] == 2 and second["run_id"] == first["run_id"]
    assert second["precision"] == "fp32"  # a finished run read back from its model card says it too

    out = CliRunner().invoke(
        app, ["search-clips", "stir a blue bowl", "--k", "3", "--data-root", str(tmp_path)]
    )
    assert out.exit_code == 0, out.output
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("checkpoint: ") and len(lines) == 4 and "syn" in lines[1]


def test_flow_with_no_data_fails_cleanly(tmp_path: Path) -> None:
    out = CliRunner().invoke(
        app, ["train", "--epochs", "1", "--data-root", str(DataRoot.from_any(tmp_path).url)]
    )
    assert out.exit_code == 2 and "no clip_pairs shards" in out.stderr
