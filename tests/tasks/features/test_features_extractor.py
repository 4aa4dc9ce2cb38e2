"""The pipelined extractor: batching across videos, failures as rows, frame_features rows."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch

from models.encoders import pick_runtime, prepare
from models.inflight import InflightEncoder
from storage.schemas import validate_table
from storage.schemas.vectors import vector_of
from tasks.features.decode import SPEC_2D, SPEC_3D
from tasks.features.extractor import Extractor, ExtractorSettings, VideoJob, VideoResult
from tasks.features.rows import result_table
from tests.tasks.features.features_media import encode_frames, fake_nvdec_path, index_frames

SMALL_2D = SPEC_2D.__class__(fps=1.0, short_side=64, round="up", chunk=8, rgb_first=True)
SMALL_3D = SPEC_3D.__class__(fps=24.0, short_side=32, crop=32, chunk=64)


def small_extractor(encoders: dict[str, torch.nn.Module], settings: ExtractorSettings) -> Extractor:
    """The real encoders (fp32, CPU) at the small test sizes."""
    rt = pick_runtime("cpu", "fp32")
    return Extractor(
        {m: prepare(n, rt) for m, n in encoders.items()},
        {"resnet152": SMALL_2D, "resnext101": SMALL_3D},
        rt,
        settings,
    )


@pytest.fixture(scope="module")
def results(encoders: dict[str, torch.nn.Module], media: dict[str, Path]) -> dict[str, VideoResult]:
    extractor = small_extractor(encoders, ExtractorSettings(batch_2d=6, batch_3d=5, decode_workers=2))
    jobs = [VideoJob(name, str(media[name])) for name in ("index25", "corrupt", "smooth", "truncated")]
    return {r.video_id: r for r in extractor.run(jobs)}


def test_every_job_gets_exactly_one_result(results: dict[str, VideoResult]) -> None:
    assert sorted(results) == ["corrupt", "index25", "smooth", "truncated"]


def test_bad_files_fail_with_ffmpeg_message_and_good_ones_survive(results: dict[str, VideoResult]) -> None:
    assert results["corrupt"].status == "failed" and results["corrupt"].error
    assert results["truncated"].status == "failed" and results["truncated"].error
    assert results["index25"].status == "ok" and results["smooth"].status == "ok"
    assert len(results["index25"].rows["resnet152"].vectors) == 11  # 10.4 s -> t = 0..10
    assert len(results["index25"].rows["resnext101"].vectors) == 16  # ceil(250 / 16)


def test_batching_across_videos_does_not_change_features(
    encoders: dict[str, torch.nn.Module], media: dict[str, Path], results: dict[str, VideoResult]
) -> None:
    alone = small_extractor(encoders, ExtractorSettings(batch_2d=1, batch_3d=1, decode_workers=1))
    [single] = list(alone.run([VideoJob("smooth", str(media["smooth"]))]))
    for model in ("resnet152", "resnext101"):
        a, b = single.rows[model].vectors, results["smooth"].rows[model].vectors
        assert a.shape == b.shape
        assert float((a * b).sum(1).min()) > 0.9999


def test_rows_fit_the_schema(results: dict[str, VideoResult]) -> None:
    random = {"resnet152": True, "resnext101": True}
    ok = validate_table("frame_features", result_table(results["smooth"], random, random))
    bad = validate_table("frame_features", result_table(results["corrupt"], random, random))
    vectors = np.array(ok.column("vector").to_pylist(), dtype=np.float32)
    assert ok.schema.field("vector").type == vector_of(pa.float16())  # float16, no null values
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=2e-3)
    assert set(ok.column("status").to_pylist()) == {"ok"} and all(ok.column("random_weights").to_pylist())
    spans = ok.filter(pc.equal(ok.column("model"), "resnext101"))
    assert (
        spans.column("t_start_ms").to_pylist()[:2] == [0, 667]
        and spans.column("t_end_ms")[-1].as_py() == 3500
    )
    assert bad.num_rows == 2 and set(bad.column("status").to_pylist()) == {"failed"}
    assert all(bad.column("error").to_pylist())


class _Recorder(torch.nn.Module):
    """A stand-in encoder that records each forward's batch and gives every row its own pixel mean."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(len(x))
        return x.float().flatten(1).mean(1, keepdim=True).repeat(1, 4) + torch.arange(4)


class _DeviceThatHoldsBatches(InflightEncoder):
    """On CPU a submitted batch is done at once; this one hands batches back only when waited for, as a
    GPU still working on them does."""

    @property
    def busy(self) -> bool:
        return bool(self._ready)

    def done(self, wait: bool = False) -> list[tuple[object, np.ndarray]]:
        return super().done(wait) if wait else []


def test_each_video_is_encoded_in_its_own_fixed_batches(media: dict[str, Path]) -> None:
    """Low-precision kernels may round differently with a batch's make-up, so a batch never mixes videos:
    rows [0, b), [b, 2b), ... of one video, whatever else is in flight (a resumed run gets the same bits)."""
    rt = pick_runtime("cpu", "fp32")
    nets = {"resnet152": _Recorder(), "resnext101": _Recorder()}
    extractor = Extractor(
        nets,  # type: ignore[arg-type]
        {"resnet152": SMALL_2D, "resnext101": SMALL_3D},
        rt,
        ExtractorSettings(batch_2d=3, batch_3d=4, decode_workers=2),
    )
    jobs = [VideoJob(name, str(media[name])) for name in ("index25", "smooth", "index2997")]
    results = {r.video_id: r for r in extractor.run(jobs)}
    expected: dict[str, list[int]] = {"resnet152": [], "resnext101": []}
    for result in results.values():
        for model, batch in (("resnet152", 3), ("resnext101", 4)):
            n = len(result.rows[model].vectors)
            expected[model] += [batch] * (n // batch) + ([n % batch] if n % batch else [])
    for model, net in nets.items():
        assert sorted(net.batches) == sorted(expected[model])
        assert len(net.batches) > len(jobs)  # several batches per video: the split is exercised


def test_batches_across_videos_give_the_per_video_rows(
    encoders: dict[str, torch.nn.Module], media: dict[str, Path], results: dict[str, VideoResult]
) -> None:
    """The GPU way (batches filled from all videos in flight, padded to full size, an NVDEC decoder that
    falls back to the CPU where there is none) gives the same rows, spans and failures as per-video batches."""
    rt = pick_runtime("cpu", "fp32")
    extractor = Extractor(
        {m: prepare(n, rt) for m, n in encoders.items()},
        {"resnet152": SMALL_2D, "resnext101": SMALL_3D},
        rt,
        ExtractorSettings(
            batch_2d=4, batch_3d=7, decode_workers=3, across_videos=True, pad_batches=True, hwaccel="cuda"
        ),
    )
    jobs = [VideoJob(name, str(media[name])) for name in ("index25", "corrupt", "smooth", "truncated")]
    across = {r.video_id: r for r in extractor.run(jobs)}
    assert sorted(across) == sorted(results)
    for vid, result in results.items():
        assert across[vid].status == result.status
        for model, rows in result.rows.items():
            got = across[vid].rows[model]
            assert got.vectors.shape == rows.vectors.shape
            assert float((got.vectors * rows.vectors).sum(1).min()) > 0.9999
            np.testing.assert_array_equal(got.t_start_ms, rows.t_start_ms)
            np.testing.assert_array_equal(got.t_end_ms, rows.t_end_ms)
    assert extractor.mixed_batches > 0  # some batches did hold rows of two videos
    # No NVDEC here: the videos that extracted say so, with ffmpeg's reason; per-video runs had no hwaccel.
    ok = [r for r in across.values() if r.status == "ok"]
    assert ok and all(r.decoder == "cpu" and r.decoder_fallback for r in ok)
    assert all(r.decoder == "cpu" and r.decoder_fallback is None for r in results.values())
    # Every batch went to the encoder at its full size; the padding rows' outputs were dropped.
    for model, size in (("resnet152", 4), ("resnext101", 7)):
        device = extractor.devices[model]
        real = device.batches * size - device.padded_rows
        assert real >= sum(len(r.rows[model].vectors) for r in across.values() if r.status == "ok")
    assert sum(d.padded_rows for d in extractor.devices.values()) > 0


def test_compiled_per_video_batches_pad_the_tail_to_the_batch_shape(media: dict[str, Path]) -> None:
    """Per-video batches on a compiled CUDA runtime: a video's last, short batch is padded to the batch
    size (one shape, one CUDA graph, no recompile per tail length) and the padding's rows are dropped."""
    rt = pick_runtime("cpu", "fp32")
    specs = {"resnet152": SMALL_2D, "resnext101": SMALL_3D}
    jobs = [VideoJob(name, str(media[name])) for name in ("index25", "smooth")]

    def run(pad: bool) -> tuple[dict[str, VideoResult], dict[str, _Recorder]]:
        nets = {"resnet152": _Recorder(), "resnext101": _Recorder()}
        settings = ExtractorSettings(batch_2d=3, batch_3d=4, decode_workers=1, pad_batches=pad)
        extractor = Extractor(nets, specs, rt, settings)  # type: ignore[arg-type]
        return {r.video_id: r for r in extractor.run(jobs)}, nets

    padded, padded_nets = run(True)
    plain, _ = run(False)
    assert {m: set(n.batches) for m, n in padded_nets.items()} == {"resnet152": {3}, "resnext101": {4}}
    for vid, result in plain.items():
        for model, rows in result.rows.items():
            got = padded[vid].rows[model]
            np.testing.assert_allclose(got.vectors, rows.vectors, rtol=1e-6)
            np.testing.assert_array_equal(got.t_end_ms, rows.t_end_ms)
    assert any(len(r.rows["resnet152"].vectors) % 3 for r in plain.values())  # a short tail was padded


@pytest.mark.parametrize("across", [False, True])
def test_rows_of_a_hardware_decode_that_failed_mid_stream_are_dropped(
    media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, across: bool
) -> None:
    """NVDEC failing on pictures after rows were already encoded: those rows go (waiting, batched, on the
    device or encoded), the video is decoded again on the CPU, and its rows are the CPU decode's alone."""
    rt = pick_runtime("cpu", "fp32")
    specs = {"resnet152": SMALL_2D, "resnext101": SMALL_3D}
    jobs = [VideoJob(name, str(media[name])) for name in ("index25", "smooth")]

    def run(hwaccel: str | None) -> dict[str, VideoResult]:
        settings = ExtractorSettings(
            batch_2d=2, batch_3d=3, decode_workers=2, across_videos=across, hwaccel=hwaccel
        )
        nets = {"resnet152": _Recorder(), "resnext101": _Recorder()}
        extractor = Extractor(nets, specs, rt, settings)  # type: ignore[arg-type]
        if across:  # batches stay "on the device" until waited for, as on a busy GPU
            extractor.devices = {m: _DeviceThatHoldsBatches(net, rt) for m, net in nets.items()}
        return {r.video_id: r for r in extractor.run(jobs)}

    cpu = run(None)
    wrong_pictures = encode_frames(tmp_path / "wrong.mp4", 255 - index_frames(260), "25")  # index25's size
    monkeypatch.setenv("PATH", fake_nvdec_path(tmp_path, fail_with=wrong_pictures))
    redone = run("cuda")
    index25 = redone["index25"]
    assert index25.status == "ok" and index25.decoder == "cpu"
    assert index25.decoder_fallback is not None and "failed mid-stream" in index25.decoder_fallback
    for vid, result in cpu.items():
        for model, rows in result.rows.items():
            np.testing.assert_array_equal(redone[vid].rows[model].vectors, rows.vectors)
            np.testing.assert_array_equal(redone[vid].rows[model].t_end_ms, rows.t_end_ms)


def test_a_pyav_decode_given_up_past_its_budget_is_marked_abandoned(
    media: dict[str, Path], tmp_path: Path
) -> None:
    """The crash guard's cue: an error row whose in-process decode may have left a thread stuck in the
    libraries. A damaged file, which the decoder reads to its end, is not abandoned."""
    fifo = tmp_path / "stalled.mp4"
    os.mkfifo(fifo)  # its open blocks inside the libraries, as on a stalled mount
    rt = pick_runtime("cpu", "fp32")
    extractor = Extractor(
        {"resnet152": _Recorder(), "resnext101": _Recorder()},  # type: ignore[dict-item]
        {"resnet152": SMALL_2D, "resnext101": SMALL_3D},
        rt,
        ExtractorSettings(decode_workers=2, decoder="pyav", timeout_base_s=0.5),
    )
    try:
        jobs = [VideoJob("stalled", str(fifo)), VideoJob("corrupt", str(media["corrupt"]))]
        results = {r.video_id: r for r in extractor.run(jobs)}
    finally:
        with contextlib.suppress(OSError):  # let the abandoned open return, so its thread ends
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert results["stalled"].status == "error" and results["stalled"].abandoned
    assert "timeout" in (results["stalled"].error or "")
    assert results["corrupt"].status == "failed" and not results["corrupt"].abandoned


def test_an_exception_from_the_jobs_iterator_is_raised_to_the_caller(media: dict[str, Path]) -> None:
    """The jobs iterator (the stage's downloads) runs in a feeder thread: an exception there ended the
    feeding as if the jobs were done, so the shard was written without the videos after it."""
    rt = pick_runtime("cpu", "fp32")
    nets = {"resnet152": _Recorder()}
    extractor = Extractor(nets, {"resnet152": SMALL_2D}, rt, ExtractorSettings(decode_workers=1))  # type: ignore[arg-type]

    def jobs() -> Iterator[VideoJob]:
        yield VideoJob("smooth", str(media["smooth"]))
        raise RuntimeError("the downloads broke")

    got: list[str] = []
    with pytest.raises(RuntimeError, match="the downloads broke"):
        got.extend(r.video_id for r in extractor.run(jobs()))
    assert got == ["smooth"]  # the job before it was done
