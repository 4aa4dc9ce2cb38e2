"""FAC inputs from a data root: each clip's audio is its own seconds of the track, or none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from storage.shards import list_markers, read_marker, read_shard, write_shard
from tasks.audio.fac_data import load_root
from tasks.synthetic.audio import write_synthetic_audio
from tasks.synthetic.training import write_synthetic_root
from tasks.train.prepare import build_pairs_shard, ready_shards


def test_clips_after_a_short_track_ends_have_no_audio(tmp_path: Path) -> None:
    """One video's track stops after 3 s (a track shorter than its video): its clips that start later get
    no audio (the loss drops that term), its earlier ones keep theirs, other videos are untouched. Before,
    every later clip was given the track's last second, the same vector for all of them."""
    root = write_synthetic_root(tmp_path / "root", n_videos=8, n_steps=4, clips_per_video=6, dim=8, shards=1)
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    write_synthetic_audio(root, no_audio_every=100)
    _, vids = load_root(root)
    short = str(vids[0])
    shard = list_markers(root, "audio_features")[0].shard
    table = read_shard(root, "audio_features", shard)
    assert table is not None
    keep = pc.or_(pc.not_equal(table.column("video_id"), short), pc.less(table.column("idx"), 3))
    cut = table.filter(keep)
    marker = read_marker(root, "audio_features", shard)
    assert marker is not None
    write_shard(root, "audio_features", shard, cut, config_hash=marker.config_hash,
                code_version=marker.code_version, rows_in=cut.num_rows)  # fmt: skip

    data, vids = load_root(root)
    pairs = read_shard(root, "clip_pairs", shard)
    assert pairs is not None
    pairs = pairs.sort_by([("video_id", "ascending"), ("idx", "ascending")])
    starts = np.asarray(pairs.column("start_ms").to_pylist())
    mine = vids == short
    assert (starts[mine] >= 3000).any() and (starts[mine] < 3000).any()  # both kinds of clip exist
    assert not data.has_audio[mine & (starts >= 3000)].any()
    assert (data.audio[mine & (starts >= 3000)] == 0).all()
    assert data.has_audio[mine & (starts < 3000)].all()
    assert data.has_audio[~mine].all()


def test_a_root_with_shards_of_two_encoders_takes_one_for_every_video(tmp_path: Path) -> None:
    """An `audio run --audio-encoder` rerun that stopped part way leaves shards of two encoders (rows of
    different widths). FAC takes one encoder for the whole root (the first by name): the other's videos have
    no audio. Before, each shard's own was taken, and the wider rows did not fit the audio matrix."""
    root = write_synthetic_root(tmp_path / "root", n_videos=8, n_steps=4, clips_per_video=6, dim=8, shards=2)
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    write_synthetic_audio(root, dim=32, no_audio_every=100)
    second = list_markers(root, "audio_features")[1].shard
    table = read_shard(root, "audio_features", second)
    assert table is not None
    rows = table.to_pylist()
    wider = [{**r, "model": "zz_encoder", "vector": list(np.resize(r["vector"], 48))} for r in rows]
    other = pa.Table.from_pylist(wider, schema=table.schema)
    write_shard(
        root, "audio_features", second, other, config_hash="other", code_version="t", rows_in=len(rows)
    )

    data, vids = load_root(root)
    in_second = np.isin(vids, list({r["video_id"] for r in rows}))
    assert data.audio.shape[1] == 32
    assert in_second.any() and not data.has_audio[in_second].any()
    assert data.has_audio[~in_second].all()
    # Each video's clips pool its own rows: the first shard's audio is what it was with one encoder.
    write_shard(
        root, "audio_features", second, table, config_hash="synthetic", code_version="t", rows_in=len(rows)
    )
    alone, _ = load_root(root)
    np.testing.assert_array_equal(alone.audio[~in_second], data.audio[~in_second])
    assert alone.has_audio.all()
