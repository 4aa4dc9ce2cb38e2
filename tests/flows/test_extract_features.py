"""The extract_features flow: shard k from videos shard k, keep flags, failures as rows, resume, CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.extract_features import extract_features
from models.cpu_precision import cpu_bf16
from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import read_marker, read_shard, write_shard
from tasks.features.config import ExtractFeaturesConfig
from tests.flows.downloads import root_with_downloads
from tests.tasks.features.features_media import encode_frames, fake_nvdec_path, index_frames

GOOD, BAD, DROPPED = "goodvideo01", "badvideo002", "dropvideo03"
# Small inputs keep the real architectures cheap on 2 cores; the reference sizes are the defaults.
CFG = ExtractFeaturesConfig(
    short_side_2d=64, size_3d=32, batch_2d=4, batch_3d=4, decode_workers=1, random_weights=True
)
# The CLI's small inputs, as CFG's: the data root's calibrated encoders serve both (none at 224 / 112 px).
SMALL = ["--size-2d", str(CFG.short_side_2d), "--size-3d", str(CFG.size_3d)]


def _table(dataset: str, rows: list[dict[str, object]]) -> pa.Table:
    schema = get_schema(dataset).schema
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)


@pytest.fixture()
def root(tmp_path: Path) -> DataRoot:
    root, videos = root_with_downloads(tmp_path)
    # Downloads that an earlier run finished: the stage resumes from them without any network.
    encode_frames(videos / f"{GOOD}.mp4", index_frames(75), "25")  # 3 s
    _corrupt_download(root)
    (videos / f"{DROPPED}.mp4").write_bytes(b"never read")
    rows = [
        {"video_id": v, "url": None, "keep": v != DROPPED, "status": "ok", "crawl_id": "c0"}
        for v in (GOOD, BAD, DROPPED)
    ]
    write_shard(root, "videos", 0, _table("videos", rows), config_hash="v-hash", code_version="t", rows_in=3)
    return root


def _corrupt_download(root: DataRoot) -> None:
    """BAD's download as a cut transfer leaves it: a file that is not a video (again on every retry)."""
    path = Path(root.path("_work", "videos", f"{BAD}.mp4"))
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video" * 50)


def test_flow_writes_shard_then_skips_it(root: DataRoot) -> None:
    summary = extract_features(CFG, root.url)
    assert summary["shards"] == 1 and summary["shards_cached"] == 0
    table = read_shard(root, "frame_features", 0)
    assert table is not None
    good = table.filter(pa.compute.equal(table.column("video_id"), GOOD)).to_pydict()
    assert good["model"].count("resnet152") == 3 and good["model"].count("resnext101") == 5  # ceil(72/16)
    assert set(good["status"]) == {"ok"} and all(good["random_weights"])
    assert abs(np.linalg.norm(np.array(good["vector"][0], np.float32)) - 1) < 2e-3
    bad = table.filter(pa.compute.equal(table.column("video_id"), BAD)).to_pydict()
    # A corrupt download is retried (downloaded again) twice before the video is failed for good.
    assert bad["status"] == ["error", "error"] and "Invalid data" in bad["error"][0]
    assert "download 1 of 3" in bad["error"][0]
    assert not Path(root.path("_work", "videos", f"{BAD}.mp4")).exists()
    assert DROPPED not in table.column("video_id").to_pylist()
    marker = read_marker(root, "frame_features", 0)
    assert marker is not None and marker.rows_in == 2 and marker.errors == 1
    assert marker.extra["videos_decoded_on"] == {"cpu": 1}  # GOOD; BAD never decoded
    # The precision "auto" took on this machine, per video extracted (models/cpu_precision.py).
    assert marker.extra["videos_computed_in"] == {cpu_bf16().precision: 1}
    assert marker.extra["video_precision"] == {GOOD: cpu_bf16().precision}  # BAD has no features
    for attempt in (2, 3):
        _corrupt_download(root)
        summary = extract_features(CFG, root.url)
        assert summary["shards_cached"] == 0
        marker = read_marker(root, "frame_features", 0)
        assert marker is not None and marker.extra["videos_extracted"] == 1  # GOOD is not redone
        # GOOD came from its parked part this time: its precision came with it.
        assert marker.extra["videos_computed_in"] == {}
        assert marker.extra["video_precision"] == {GOOD: cpu_bf16().precision}
        errors = read_shard(root, "frame_features", 0)
        assert errors is not None
        expected = "download 2 of 3" if attempt == 2 else "after 3 downloads"
        assert any(expected in (e or "") for e in errors.column("error").to_pylist())
    table = read_shard(root, "frame_features", 0)
    assert table is not None
    bad = table.filter(pa.compute.equal(table.column("video_id"), BAD)).to_pydict()
    assert bad["status"] == ["failed", "failed"] and "after 3 downloads" in bad["error"][0]
    assert marker.errors == 0
    # keep_videos=False: extracted files are gone, the dropped video's file was never touched.
    videos = Path(root.path("_work", "videos"))
    assert not (videos / f"{GOOD}.mp4").exists() and (videos / f"{DROPPED}.mp4").exists()
    assert Path(root.path("models", "calibrated-resnet152-seed0-s64.pt")).is_file()
    again = extract_features(CFG, root.url)
    assert again["shards_cached"] == 1
    # Upstream changes (captions now keep only GOOD): every video is reused from the shard itself, and the
    # new marker still says which precision GOOD's features are in.
    rows = [
        {"video_id": v, "keep": v == GOOD, "status": "ok", "crawl_id": "c0"} for v in (GOOD, BAD, DROPPED)
    ]
    write_shard(root, "captions", 0, _table("captions", rows), config_hash="c", code_version="t", rows_in=3)
    rerun = extract_features(CFG, root.url)
    assert rerun["shards_cached"] == 0
    marker = read_marker(root, "frame_features", 0)
    assert marker is not None and marker.extra["videos_extracted"] == 0 and marker.extra["videos_reused"] == 1
    assert marker.extra["video_precision"] == {GOOD: cpu_bf16().precision}


def test_captions_keep_flag_decides_and_reruns_downstream(root: DataRoot) -> None:
    extract_features(CFG.model_copy(update={"keep_videos": True}), root.url)
    rows = [{"video_id": v, "keep": v == BAD, "status": "ok", "crawl_id": "c0"} for v in (GOOD, BAD, DROPPED)]
    write_shard(
        root, "captions", 0, _table("captions", rows), config_hash="c-hash", code_version="t", rows_in=3
    )
    _corrupt_download(root)  # the retry of BAD's corrupt download gets the same bytes
    summary = extract_features(CFG.model_copy(update={"keep_videos": True}), root.url)
    assert summary["shards_cached"] == 0  # the upstream hash changed, so the shard ran again
    table = read_shard(root, "frame_features", 0)
    assert table is not None and set(table.column("video_id").to_pylist()) == {BAD}


def test_refuses_without_weights_unless_random_allowed(root: DataRoot) -> None:
    with pytest.raises(Exception, match="random-weights"):
        extract_features(CFG.model_copy(update={"random_weights": False}), root.url)


def test_cli_extract_one_file(root: DataRoot, tmp_path: Path) -> None:
    video = Path(root.path("_work", "videos", f"{GOOD}.mp4"))
    out = tmp_path / "f.parquet"
    runner = CliRunner()
    refused = runner.invoke(
        app, ["features", "extract", str(video), "--out", str(out), "--data-root", root.url]
    )
    assert refused.exit_code == 2 and refused.stderr.startswith("error: no resnet152 weights")
    bad = Path(root.path("_work", "videos", f"{BAD}.mp4"))
    failed = runner.invoke(
        app,
        [
            "features",
            "extract",
            str(bad),
            "--out",
            str(out),
            "--random-weights",
            *SMALL,
            "--data-root",
            root.url,
        ],
    )
    assert (
        failed.exit_code == 2
        and failed.stderr.startswith(f"error: {bad}: ")
        and "Invalid data" in failed.stderr
    )
    assert len(failed.stderr.strip().splitlines()) == 1 and not out.exists()


def test_cli_extract_on_a_host_without_ffmpeg_decodes_through_pyav(
    root: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GPU image often has no ffmpeg executable: `auto` then decodes through PyAV, with the command
    line's rows; naming ffmpeg there is a one-line error."""
    video = Path(root.path("_work", "videos", f"{GOOD}.mp4"))
    runner = CliRunner()
    args = ["features", "extract", str(video), "--random-weights", *SMALL, "--data-root", root.url]
    cli = runner.invoke(app, [*args, "--out", str(tmp_path / "cli.parquet"), "--decoder", "ffmpeg"])
    assert cli.exit_code == 0 and "decoded through ffmpeg" in cli.stdout, cli.output
    # Progress on the one video, in seconds of it, up to its whole length.
    shown = [line for line in cli.stderr.splitlines() if f"{video.name}: seconds of video" in line]
    done, total = shown[-1].rsplit(" ", 1)[1].split("/")
    assert done == total and int(total) > 0, shown
    # --size-2d / --size-3d chose the encoders' input sizes: only those were calibrated.
    assert sorted(p.name for p in Path(root.path("models")).iterdir()) == [
        "calibrated-resnet152-seed0-s64.pt",
        "calibrated-resnext101-seed0-s32.pt",
    ]
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # the venv's tools: no ffmpeg, no ffprobe
    av = runner.invoke(app, [*args, "--out", str(tmp_path / "av.parquet")])
    assert av.exit_code == 0 and "decoded through pyav" in av.stdout, av.output
    want, got = pq.read_table(tmp_path / "cli.parquet"), pq.read_table(tmp_path / "av.parquet")
    assert got.num_rows == want.num_rows > 0
    assert got.column("vector").to_pylist() == want.column("vector").to_pylist()
    named = runner.invoke(app, [*args, "--out", str(tmp_path / "no.parquet"), "--decoder", "ffmpeg"])
    assert named.exit_code == 2 and "ffmpeg/ffprobe are not on PATH" in named.stderr, named.output
    assert "Traceback" not in named.stderr and not (tmp_path / "no.parquet").exists()


def test_cli_run_refuses_without_weights_before_any_work(
    root: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-cache"))
    runner = CliRunner()
    refused = runner.invoke(app, ["features", "run", "--data-root", root.url])
    assert refused.exit_code == 2, refused.output
    assert (
        refused.stderr.startswith("error: no resnet152 weights found")
        and "--random-weights" in refused.stderr
    )
    assert "Traceback" not in refused.output and read_shard(root, "frame_features", 0) is None
    nope = tmp_path / "nope.pth"
    missing = runner.invoke(
        app, ["features", "run", "--random-weights", "--resnext-weights", str(nope), "--data-root", root.url]
    )
    assert missing.exit_code == 2 and f"{nope}: resnext101 weights file not found" in missing.stderr


@pytest.mark.parametrize("nvdec", ["refuses", "fails mid-stream", "decodes"])
def test_shards_record_the_decoder_that_really_ran(
    root: DataRoot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    nvdec: str,
) -> None:
    """Asked to decode on NVDEC, a shard whose videos NVDEC refused (ffmpeg then decodes them in software
    and exits 0) or failed on mid-stream (wrong pictures, exit 0; decoded again on the CPU) says so: a
    warning with ffmpeg's reason, and the marker counts them on the CPU."""
    import tasks.features.decode as features_decode

    # "This GPU has NVDEC, through ffmpeg": the stage's decoder choice then keeps the command line.
    monkeypatch.setattr(features_decode, "hwaccel_available", lambda device: True)
    failing = nvdec == "fails mid-stream"
    wrong = encode_frames(tmp_path / "wrong.mp4", 255 - index_frames(75), "25") if failing else None
    monkeypatch.setenv("PATH", fake_nvdec_path(tmp_path, refuse=nvdec == "refuses", fail_with=wrong))
    extract_features(CFG.model_copy(update={"decode_hwaccel": "cuda"}), root.url)
    marker = read_marker(root, "frame_features", 0)
    assert marker is not None
    assert marker.extra["videos_decoded_on"] == ({"cuda": 1} if nvdec == "decodes" else {"cpu": 1})
    table = read_shard(root, "frame_features", 0)
    assert table is not None
    good = table.filter(pa.compute.equal(table.column("video_id"), GOOD)).to_pydict()
    assert good["model"].count("resnet152") == 3 and good["model"].count("resnext101") == 5  # no rows twice
    warned = [
        r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING" and "decoder gave up" in r.getMessage()
    ]
    head = "frame_features shard 0: the cuda decoder gave up on 1 of 1 videos, decoded on the CPU instead ("
    if nvdec == "refuses":
        assert warned == [
            f"{head}[h264 @ 0x55d1c2f4a8c0] Hardware is lacking required capabilities | [h264 @ 0x55d1c2f4a8c0] "
            "Failed setup for format cuda: hwaccel initialisation returned error.)"
        ]
    elif nvdec == "fails mid-stream":
        assert len(warned) == 1 and warned[0].startswith(f"{head}failed mid-stream: ")
        assert "cuvidDecodePicture(decoder->decoder, &ctx->pic_params) failed -> CUDA_ERROR" in warned[0]
    else:
        assert warned == []
