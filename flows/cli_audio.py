"""CLI: `howto audio run` (the audio_features stage), `howto audio fac` (train and evaluate MMV's FAC
embedding on stored datasets) and `howto bench audio`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, get_args

import typer

from flows import cli_access
from flows.cli_common import DataRootOption, ExistingDataRootOption, bench_app, choice_metavar, fail, finite
from tasks.audio.config import AudioEncoderName

if TYPE_CHECKING:
    from tasks.audio.config import ExtractAudioConfig

app = typer.Typer(
    help="Audio, the third modality: per-second audio features and the FAC embedding.", no_args_is_help=True
)

# The choices shown in --help; a bad value is refused by the config, in one line naming the option.
EncoderOption = Annotated[
    str,
    typer.Option(
        "--audio-encoder",
        metavar=choice_metavar(get_args(AudioEncoderName)),
        help="logmel_stats (no weights) or cnn14 (PANNs Cnn14_16k layout).",
    ),
]


def _config(encoder: str, weights: str | None, random_weights: bool, width: int) -> ExtractAudioConfig:
    from pydantic import ValidationError

    from tasks.audio.config import ExtractAudioConfig

    try:
        return ExtractAudioConfig(
            encoder=encoder, weights=weights, random_weights=random_weights, width=width
        )  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "encoder"
        # The config's fields by the options that set them (the encoder is --audio-encoder).
        flag = {"encoder": "--audio-encoder"}.get(field, f"--{field.replace('_', '-')}")
        fail(f"{flag}: {err['msg']}")
    raise AssertionError("unreachable")


@app.command("run")
def run_command(
    data_root: DataRootOption = None,
    encoder: EncoderOption = "logmel_stats",
    weights: Annotated[
        str | None, typer.Option("--audio-weights", help="PANNs checkpoint Cnn14_16k_mAP=0.438.pth (cnn14).")
    ] = None,
    random_weights: Annotated[
        bool, typer.Option("--random-weights", help="cnn14 without weights: calibrated random ones.")
    ] = False,
    width: Annotated[int, typer.Option("--width", help="cnn14 first-block channels (64 = PANNs).")] = 64,
    demo_url: Annotated[
        str | None, cli_access.demo_url_option("Fetch missing tracks from a local demo site, not YouTube.")
    ] = None,
    rate: cli_access.RateOption = 0.5,
) -> None:
    """Run the extract_audio flow over every videos shard (after `howto features run`)."""
    from flows.extract_audio import extract_audio
    from tasks.audio.weights import check_audio_weights

    cfg = _config(encoder, weights, random_weights, width)
    check_audio_weights(cfg)  # in seconds, before Prefect starts (the flow checks again)
    from flows.stage_inputs import require_upstream
    from storage.layout import DataRoot

    require_upstream(DataRoot.from_any(data_root), "audio")  # not after a 30 s Prefect retry
    access = cli_access.access_from_options(demo_url, rate, 1, None, None)
    # Missing or unusable weights and a halted download are expected failures (flows/cli_errors.py).
    typer.echo(extract_audio(cfg, data_root, access))


@app.command("fac")
def fac_command(
    data_root: ExistingDataRootOption = None,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Seeds per variant (means are printed).")] = 3,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Training epochs of every run.")] = 30,
    heldout_fraction: Annotated[
        float,
        typer.Option("--heldout-fraction", min=0.05, max=0.9, help="Share of videos held out for retrieval."),
    ] = 0.3,
    lambda_va: Annotated[
        float,
        typer.Option(
            "--lambda-va", min=0.0, callback=finite("--lambda-va"), help="Weight of video-audio NCE."
        ),
    ] = 1.0,
    lambda_vt: Annotated[
        float,
        typer.Option(
            "--lambda-vt", min=0.0, callback=finite("--lambda-vt"), help="Weight of video-text MIL-NCE."
        ),
    ] = 1.0,
) -> None:
    """Train MMV's FAC embedding on the stored clips, audio and captions; print video<->audio and zero-shot
    audio->text retrieval for FAC, the shared-space ablation and an audio-shuffled control."""
    import torch

    from models.fac import FACLossWeights
    from storage.layout import DataRoot
    from tasks.audio.fac_compare import compare_root
    from tasks.audio.fac_train import FACTrainConfig

    torch.set_num_threads(1)  # small matrices
    base = FACTrainConfig(epochs=epochs, weights=FACLossWeights(va=lambda_va, vt=lambda_vt))
    try:
        lines = compare_root(DataRoot.from_any(data_root), base, seeds, heldout_fraction)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    for line in lines:
        typer.echo(line)


def bench_audio_command(
    seconds: Annotated[int, typer.Option("--seconds", min=2, help="Length of the generated track.")] = 120,
    width: Annotated[
        int, typer.Option("--width", min=4, max=64, help="Random cnn14 width to time besides 64.")
    ] = 16,
) -> None:
    """Audio-seconds per wall-second: ours vs a naive path, for logmel_stats and random cnn14."""
    from tasks.audio.config import ExtractAudioConfig
    from tasks.audio.weights import load_audio_encoder
    from tasks.bench.audio import run_audio_bench

    typer.echo("note: shared machine; numbers are noisy. cnn14 has random (calibrated) weights: speed only.")
    encoders = {"logmel_stats": load_audio_encoder(ExtractAudioConfig())[0]}
    for w in sorted({width, 64}):
        cfg = ExtractAudioConfig(encoder="cnn14", random_weights=True, width=w)
        encoders[f"cnn14 (width {w})"] = load_audio_encoder(cfg)[0]
    with tempfile.TemporaryDirectory(prefix="howto-bench-audio-") as tmp:
        run_audio_bench(Path(tmp), seconds, encoders, log=typer.echo)


def register(root: typer.Typer) -> None:
    """Mount on the `howto` app (flows/cli.py discovers this)."""
    root.add_typer(app, name="audio")
    bench_app.command("audio")(bench_audio_command)
