"""features then audio on one shard: the features stage keeps each download's track before deleting the
video; the audio stage gives every video a row status (ok, no_audio, silent) and a rerun does no work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from flows.extract_audio import extract_audio
from flows.extract_features import extract_features
from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import read_shard, write_shard
from tasks.audio.config import ExtractAudioConfig
from tasks.features.config import ExtractFeaturesConfig
from tests.flows.downloads import root_with_downloads

SOUND, MUTE, QUIET = "soundvideo1", "mutevideo01", "quietvideo1"
CFG = ExtractFeaturesConfig(
    models=("resnet152",), short_side_2d=32, batch_2d=4, decode_workers=1, random_weights=True
)


def _video(out: Path, audio: str | None) -> None:
    args = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=4:duration=2"]
    if audio is not None:
        args += ["-f", "lavfi", "-i", f"{audio}:duration=2", "-c:a", "aac", "-shortest"]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *args, "-c:v", "libx264", "-preset", "ultrafast", str(out)],
        check=True,
    )


@pytest.fixture()
def root(tmp_path: Path) -> DataRoot:
    root, videos = root_with_downloads(tmp_path)
    # Downloads an earlier run finished: both stages work without any network.
    _video(videos / f"{SOUND}.mp4", "sine=frequency=440:sample_rate=16000")
    _video(videos / f"{MUTE}.mp4", None)
    _video(videos / f"{QUIET}.mp4", "anullsrc=r=16000:cl=mono")
    schema = get_schema("videos").schema
    rows = [
        {"video_id": v, "url": None, "keep": True, "status": "ok", "crawl_id": "c0"}
        for v in (SOUND, MUTE, QUIET)
    ]
    table = pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)
    write_shard(root, "videos", 0, table, config_hash="v-hash", code_version="t", rows_in=3)
    return root


def test_features_keep_tracks_and_audio_rows_every_video(root: DataRoot) -> None:
    extract_features(CFG, root.url)
    assert not list(Path(root.path("_work", "videos")).glob("*.mp4"))  # videos deleted, tracks kept
    summary = extract_audio(ExtractAudioConfig(), root.url)
    assert summary["shards"] == 1 and summary["errors"] == 0
    assert 3.9 < summary["audio_seconds"] < 4.5  # the sound and the quiet track, ~2 s each
    table = read_shard(root, "audio_features", 0)
    assert table is not None
    status = dict(zip(table.column("video_id").to_pylist(), table.column("status").to_pylist(), strict=True))
    assert status == {SOUND: "ok", MUTE: "no_audio", QUIET: "silent"}
    rows = table.filter(pa.compute.equal(table.column("video_id"), SOUND))
    # One row per started second of the decoded track (AAC adds a few ms of padding past the 2 s).
    assert rows.column("idx").to_pylist() == list(range(rows.num_rows)) and rows.num_rows in (2, 3)
    assert 1900 < rows.column("t_end_ms").to_pylist()[-1] < 2200
    again = extract_audio(ExtractAudioConfig(), root.url)
    assert again["shards_cached"] == 1


def _killed_copy(folder: Path, video_id: str) -> Path:
    """The temp file a track copy killed mid-way leaves: a process writes `.<id>.<its pid>.tmp.m4a`, then is
    killed (SIGKILL: nothing of its own clean-up runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    code = (
        "import os, signal, sys; "
        "open(os.path.join(sys.argv[1], f'.{sys.argv[2]}.{os.getpid()}.tmp.m4a'), 'wb').write(b'half'); "
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    before = {p.name for p in folder.iterdir()}
    done = subprocess.run([sys.executable, "-c", code, str(folder), video_id], check=False)
    assert done.returncode == -signal.SIGKILL
    (made,) = [p for p in folder.iterdir() if p.name not in before]
    return made


def test_features_remove_the_temp_files_of_killed_track_copies_of_their_shard(root: DataRoot) -> None:
    folder = Path(root.path("_work", "audio"))
    killed = _killed_copy(folder, SOUND)
    other_shard = _killed_copy(folder, "othervideo1")  # another shard's video: not this shard's to judge
    with subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    ) as live:
        try:
            copying = folder / f".{MUTE}.{live.pid}.tmp.m4a"  # a live process's copy (another root's run)
            copying.write_bytes(b"half")
            extract_features(CFG, root.url)
            assert copying.exists()
        finally:
            os.killpg(live.pid, signal.SIGKILL)
    assert not killed.exists() and other_shard.exists()
    assert (folder / f"{SOUND}.m4a").exists()  # the track itself is kept as before


def test_cli_audio_run_writes_the_audio_dataset(root: DataRoot) -> None:
    """`howto audio run` after the features stage: every kept video gets its audio rows (no network)."""
    from typer.testing import CliRunner

    from flows.cli import app

    extract_features(CFG, root.url)
    assert read_shard(root, "audio_features", 0) is None
    result = CliRunner().invoke(app, ["audio", "run", "--data-root", root.url])
    assert result.exit_code == 0, (result.output, result.exception)
    table = read_shard(root, "audio_features", 0)
    assert table is not None
    assert set(table.column("video_id").to_pylist()) == {SOUND, MUTE, QUIET}
    assert "'shards': 1" in result.stdout


def test_a_cuda_audio_run_takes_the_gpu_guard_like_features(root: DataRoot) -> None:
    """Audio shards on CUDA hold a GPU of the machine and a slot of the `gpu` limit, as features do: where
    `howto deploy` never made the limit, the shard stops before it touches a card, saying how to fix it."""
    from tasks.audio.stage import audio_shard
    from tasks.gpu_limit import GpuLimitMissing
    from tasks.youtube.access import YoutubeAccess

    with pytest.raises(GpuLimitMissing, match="'gpu' does not exist: run `howto deploy`"):
        audio_shard.fn(root.url, 0, ExtractAudioConfig(device="cuda"), YoutubeAccess())
    assert not Path(root.path("audio_features")).exists()  # nothing written
