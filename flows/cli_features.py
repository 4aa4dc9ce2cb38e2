"""CLI: `howto features extract VIDEO --out F.parquet`, `howto features run`, `howto bench features`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from flows import cli_access
from flows.cli_common import (
    DataRootOption,
    DeviceOption,
    IsaOption,
    bench_app,
    choice_option,
    device_option,
    fail,
    field_choices,
    require_device,
    require_file,
    rerun_if_capped,
)
from tasks.features.config import ExtractFeaturesConfig

app = typer.Typer(
    help="Frame features: ResNet-152 2D at 1 fps and ResNeXt-101 3D on 16-frame clips.", no_args_is_help=True
)

PRECISIONS = field_choices(ExtractFeaturesConfig, "precision")
RandomOption = Annotated[
    bool,
    typer.Option(
        "--random-weights",
        help="Allow BatchNorm-calibrated random weights where no pretrained weights are found (rows say so).",
    ),
]
ResnetOption = Annotated[
    str | None, typer.Option("--resnet-weights", help="ResNet-152 ImageNet V1 state_dict.")
]
ResnextOption = Annotated[
    str | None, typer.Option("--resnext-weights", help="ResNeXt-101 Kinetics checkpoint.")
]


Size2dOption = Annotated[
    int,
    typer.Option(
        "--size-2d",
        min=32,
        help="2D input short side in pixels (224: the reference extractor's; smaller is faster, other features).",
    ),
]
Size3dOption = Annotated[
    int,
    typer.Option("--size-3d", min=32, help="3D clip side in pixels (112: the reference extractor's)."),
]
DecoderOption = Annotated[
    str,
    choice_option(
        "--decoder",
        field_choices(ExtractFeaturesConfig, "decoder"),
        "features.decoder: the ffmpeg command line, PyAV (FFmpeg's libraries in process), pyav-child (PyAV in "
        "a child process per video; the same frames every way), or auto (ffmpeg where installed, else PyAV, "
        "in child processes on CUDA; on CUDA, PyAV where only it decodes on the GPU). pyav-gpu: NVDEC's "
        "frames stay on the GPU and are converted and scaled there (close to, not bit-identical with, "
        "the CPU's frames); without a GPU it is pyav.",
    ),
]


def is_parquet(path: Path) -> bool:
    """Whether a file starts with Parquet's magic bytes: the only kind of file --out may replace."""
    with path.open("rb") as handle:
        return handle.read(4) == b"PAR1"


def readable_video(video: Path) -> float:
    """The video's duration in seconds; a file the decoders cannot read (not a video, no video stream,
    damaged header) is refused in their words."""
    from tasks.features.decode import DecodeError, DecodeTimeout, probe_with
    from tasks.features.decoder_choice import cli_installed

    try:
        return probe_with("ffmpeg" if cli_installed() else "pyav", str(video)).duration_s
    except (DecodeError, DecodeTimeout) as exc:
        fail(f"{video}: not a video the decoders can read: {exc}")


def seconds_done(model: str, rows: int) -> int:
    """Seconds of video a model's first `rows` rows cover: a 2D row a second, a 3D row a 16-frame clip at 24 fps."""
    from tasks.features.decode import CLIP_FRAMES, SPEC_3D
    from tasks.features.extractor import MODEL_3D

    return int(rows * CLIP_FRAMES / SPEC_3D.fps) if model == MODEL_3D else rows


@app.command("extract")
def extract_command(
    video: Annotated[Path, typer.Argument(help="A local video file.")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write (frame_features schema).")],
    random_weights: RandomOption = False,
    resnet_weights: ResnetOption = None,
    resnext_weights: ResnextOption = None,
    precision: Annotated[
        str,
        choice_option("--precision", PRECISIONS, "fp16 needs CUDA."),
    ] = "auto",
    device: DeviceOption = "auto",
    decoder: DecoderOption = "auto",
    size_2d: Size2dOption = 224,
    size_3d: Size3dOption = 112,
    data_root: DataRootOption = None,
) -> None:
    """Features for one file; the calibrated random encoders are cached under the data root's models/."""
    import pyarrow.parquet as pq

    from storage.layout import DataRoot
    from tasks.exports.target import check_outside_root, check_writable
    from tasks.features.extractor import VideoJob
    from tasks.features.pipeline import build_extractor
    from tasks.features.rows import result_table
    from tasks.progress import advance

    require_file(video, "video file")
    for weights in (resnet_weights, resnext_weights):
        if weights:
            require_file(Path(weights), "weights file")
    root = DataRoot.from_any(data_root)
    # --out before any decoding: never a shard of a data root, a folder, or a path that cannot be written.
    if out.is_dir():
        fail(f"--out {out}: is a directory; give the .parquet file to write")
    if out.exists() and os.path.samefile(out, video):
        fail(f"--out {out}: is the video itself; give another path for the .parquet file")
    if out.is_file() and not is_parquet(out):
        fail(f"--out {out}: exists and is not a Parquet file; remove it or give another path")
    check_outside_root(root, out)
    check_writable(out)
    require_device(device)
    duration_s = readable_video(video)  # before loading (or calibrating) the encoders: seconds, not a refusal
    cfg = ExtractFeaturesConfig(
        random_weights=random_weights,
        resnet_weights=resnet_weights,
        resnext_weights=resnext_weights,
        precision=precision,  # type: ignore[arg-type]
        device=device,
        decoder=decoder,  # type: ignore[arg-type]
        short_side_2d=size_2d,
        size_3d=size_3d,
    )
    try:
        extractor, loaded, rt = build_extractor(cfg, root)
    except ValueError as exc:  # e.g. fp16 without CUDA (a missing-weights error is handled centrally)
        fail(str(exc))
    total = max(1, round(duration_s))

    def progress(_video: str, model: str, rows: int) -> None:
        # The first model's rows (both decode in step): seconds of video decoded and queued for encoding.
        if model == cfg.models[0]:
            advance(f"{video.name}: seconds of video", min(seconds_done(model, rows), total), total)

    extractor.on_chunk = progress
    [result] = list(extractor.run([VideoJob(video.stem, str(video))]))
    if result.status != "ok":
        fail(f"{video}: {result.error}")
    table = result_table(result, cfg.models, loaded.random)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{out.name}")  # an earlier --out file stays whole until this one is
    pq.write_table(table, tmp)
    tmp.replace(out)
    randoms = [m for m, r in loaded.random.items() if r]
    note = f" (RANDOM weights: {', '.join(randoms)})" if randoms else ""
    counts = ", ".join(f"{m} {len(r.vectors)}" for m, r in result.rows.items())
    typer.echo(
        f"{out}: {table.num_rows} rows ({counts}) from {result.duration_s:.1f} s of video "
        f"on {rt.device} {rt.precision}, decoded through {extractor.settings.decoder}{note}"
    )


@app.command("run")
def run_command(
    data_root: DataRootOption = None,
    random_weights: RandomOption = False,
    resnet_weights: ResnetOption = None,
    resnext_weights: ResnextOption = None,
    demo_url: cli_access.DemoUrlOption = None,
    rate: cli_access.RateOption = 0.5,
    cookies: cli_access.CookiesOption = None,
    proxy: cli_access.ProxyOption = None,
    device: DeviceOption = "auto",
    precision: Annotated[
        str,
        choice_option(
            "--precision", PRECISIONS, "auto: bf16 where the hardware has it natively; fp16 needs CUDA."
        ),
    ] = "auto",
) -> None:
    """Run the extract_features flow over every videos shard of the data root.

    Other features settings: `howto pipeline --stage features --set features.FIELD=VALUE`.
    """
    from flows.extract_features import extract_features
    from flows.stage_inputs import require_upstream
    from storage.layout import DataRoot
    from tasks.features.weights import check_weights

    require_device(device)
    from models.encoders import pick_runtime

    try:  # fp16 on a CPU, say: refused here rather than by every shard task
        pick_runtime(device, precision)
    except ValueError as exc:
        fail(f"--precision {precision} --device {device}: {exc}")
    cfg = ExtractFeaturesConfig(
        random_weights=random_weights,
        resnet_weights=resnet_weights,
        resnext_weights=resnext_weights,
        device=device,
        precision=precision,  # type: ignore[arg-type]
    )
    require_upstream(DataRoot.from_any(data_root), "features")
    # Weights that are missing (none given, none in torchvision's cache, random ones not allowed) or not
    # weights fail here, in seconds, before Prefect starts (the flow checks again, for runs that do not come
    # through this command), as `howto pipeline --stage features` does.
    check_weights(
        cfg.models,
        random_weights=random_weights,
        resnet_weights=resnet_weights,
        resnext_weights=resnext_weights,
    )
    access = cli_access.access_from_options(demo_url, rate, 1, cookies, proxy)  # one download at a time
    typer.echo(extract_features(cfg, data_root, access))


def bench_features_command(
    seconds: Annotated[
        int | None,
        typer.Option("--seconds", min=4, help="Length of each generated 360p video (default: 60)."),
    ] = None,
    device: Annotated[
        str,
        device_option(
            "cpu: one worker vs the naive path, shares of the CPU's matmul ceilings. cuda or cuda:N: many "
            "videos as the GPU stage runs them vs the reference way, share of the GPU's bf16 ceiling."
        ),
    ] = "cpu",
    videos: Annotated[
        int | None,
        typer.Option(
            "--videos",
            min=1,
            help="Copies of the video extracted together end to end (default: 2 on CPU, one per decoder of "
            "a worker; 32 on CUDA).",
        ),
    ] = None,
    batch_2d: Annotated[
        int | None,
        typer.Option("--batch-2d", min=1, help="With --device cuda: 2D batch size (default: the stage's)."),
    ] = None,
    batch_3d: Annotated[
        int | None,
        typer.Option("--batch-3d", min=1, help="With --device cuda: 3D batch size (default: the stage's)."),
    ] = None,
    rounds: Annotated[
        int,
        typer.Option(
            "--rounds",
            min=1,
            help="On a CPU: rounds of every compute-alone and end-to-end row (the end-to-end rows run 2d, 3d "
            "and both in turn); each row is its median round, and the end-to-end rows print every round's "
            "share. On a shared machine a neighbour's burst moves single runs.",
        ),
    ] = 3,
    isa: IsaOption = "native",
    decoder: DecoderOption = "auto",
    profile: Annotated[
        bool,
        typer.Option(
            "--profile",
            help="On a CPU: after the compute-alone rows, the ops one batch of each model spends most time "
            "in, with their input and weight shapes (which layer shapes hold a model back on this CPU).",
        ),
    ] = False,
) -> None:
    """Video-seconds per wall-second for 2D, 3D and both, with the path taken and the ceiling it is held to."""
    if isa != "native" and device != "cpu":
        fail(f"--isa {isa} caps CPU instructions: use it with --device cpu")
    if profile and device != "cpu":
        fail("--profile lists a CPU batch's ops: use it with --device cpu")
    rerun_if_capped(
        isa,
        [
            *("bench", "features", "--isa", isa),
            *(["--seconds", str(seconds)] if seconds else []),
            *(["--videos", str(videos)] if videos else []),
            *("--rounds", str(rounds)),
            *("--decoder", decoder),
            *(["--profile"] if profile else []),
        ],
    )
    typer.echo("note: shared machine; numbers are noisy. Random (uncalibrated) weights: speed only.")
    if device.startswith("cuda"):
        require_device(device)
        from tasks.bench.features_device import run_device_bench

        with tempfile.TemporaryDirectory(prefix="howto-bench-features-") as tmp:
            run_device_bench(
                device,
                Path(tmp),
                seconds or 60,
                videos or 32,
                typer.echo,
                batch_2d=batch_2d,
                batch_3d=batch_3d,
                decoder=decoder,
            )
        return
    if device != "cpu":
        fail(f"--device {device}: use cpu, cuda or cuda:N")
    from tasks.bench.features import run_bench

    with tempfile.TemporaryDirectory(prefix="howto-bench-features-") as tmp:
        run_bench(
            Path(tmp),
            seconds or 60,
            log=typer.echo,
            rounds=rounds,
            videos=videos or 2,
            decoder=decoder,
            profile_ops=profile,
        )


def register(root: typer.Typer) -> None:
    """Mount on the `howto` app (flows/cli.py discovers this)."""
    root.add_typer(app, name="features")
    bench_app.command("features")(bench_features_command)
