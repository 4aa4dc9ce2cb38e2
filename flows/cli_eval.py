"""CLI: `howto eval youcook2|msrvtt|crosstask|heldout` - judge a checkpoint the way the papers do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli_common import ExistingDataRootOption, choice_option, fail, finite, option_group
from flows.cli_features import ResnetOption, ResnextOption
from tasks.evaluation.formats import CROSSTASK_SPLITS, YOUCOOK2_SUBSETS

app = typer.Typer(
    help="Evaluate a checkpoint: YouCook2 / MSR-VTT retrieval, CrossTask step localisation, held-out clips.",
    no_args_is_help=True,
)

CheckpointOption = Annotated[
    str | None,
    typer.Option(
        "--checkpoint",
        help="A checkpoint .pt file or a run id (default: the newest run on the root's clip_pairs, else the "
        "newest; never a control run).",
    ),
]
MaxWordsOption = Annotated[
    int | None, typer.Option("--max-words", min=1, help="Words per sentence (default: the checkpoint's, 20).")
]
RandomOption = Annotated[
    bool | None,
    typer.Option(
        "--random-weights/--no-random-weights",
        help="Allow calibrated random CNN weights for raw videos (default: as the checkpoint's run trained on, else the data root's features).",
    ),
]
Size2dOption = Annotated[
    int | None,
    typer.Option(
        "--size-2d",
        min=32,
        help="2D short side (default: as the checkpoint's run trained on, else the data root's features, else 224).",
    ),
]
Size3dOption = Annotated[
    int | None,
    typer.Option(
        "--size-3d",
        min=32,
        help="3D side (default: as the checkpoint's run trained on, else the data root's features, else 112).",
    ),
]
DeviceOption = Annotated[str, typer.Option("--device", help="auto, cpu or cuda (feature extraction).")]


def _setup(
    checkpoint: CheckpointOption = None,
    max_words: MaxWordsOption = None,
    data_root: ExistingDataRootOption = None,
    random_weights: RandomOption = None,
    resnet_weights: ResnetOption = None,
    resnext_weights: ResnextOption = None,
    size_2d: Size2dOption = None,
    size_3d: Size3dOption = None,
    device: DeviceOption = "auto",
) -> Callable[[], Any]:
    """The options every benchmark shares, turned into a maker of its Setup: the command calls it after
    its own checks, so a usage mistake is reported before the data root is read."""

    def make() -> Any:
        from storage.layout import DataRoot
        from tasks.evaluation.embedder import trained_features
        from tasks.evaluation.run import Setup
        from tasks.features.config import ExtractFeaturesConfig
        from tasks.features.recorded import recorded_features_config

        # A path (as resolve_checkpoint tells one from a run id) must be a file, not a folder.
        looks_like_path = checkpoint and ("/" in checkpoint or checkpoint.endswith((".pt", ".pth")))
        if looks_like_path and Path(str(checkpoint)).is_dir():
            fail(f"--checkpoint {checkpoint}: is a directory, not a checkpoint file (or give a run id)")
        root = DataRoot.from_any(data_root)
        # Benchmark videos must get the features the model was trained on: the config its run recorded (the
        # root's frame_features may have been made again otherwise since), else the data root's; each
        # option overrides one field.
        trained, current = trained_features(root, checkpoint), recorded_features_config(root)
        fields: dict[str, Any] = dict(trained or current)
        note = ""
        if trained and current and trained != current:
            changed = [
                f"{k}={trained.get(k)!r}"
                for k in sorted({*trained, *current})
                if trained.get(k) != current.get(k)
            ]
            note = (f"benchmark videos get the features the checkpoint's run trained on ({', '.join(changed)}), "
                    "not those of the data root's frame_features now")  # fmt: skip
        given = {"random_weights": random_weights, "resnet_weights": resnet_weights,
                 "resnext_weights": resnext_weights, "short_side_2d": size_2d, "size_3d": size_3d}  # fmt: skip
        fields.update({k: v for k, v in given.items() if v is not None})
        for weights in (fields.get("resnet_weights"), fields.get("resnext_weights")):
            if weights and not Path(str(weights)).is_file():
                fail(f"{weights}: no such weights file")
        features = ExtractFeaturesConfig(**fields, device=device)
        return Setup(root, checkpoint, features, max_words, progress=lambda line: typer.echo(line, err=True),
                     features_note=note)  # fmt: skip

    return make


def _run(work: Callable[[], Any]) -> None:
    """Run one evaluation and print its results (expected problems end in flows/cli_errors.py)."""
    from tasks.evaluation.report import result_lines

    result = work()
    for line in result_lines(result):
        typer.echo(line)
    typer.echo(f"recorded: eval_metrics ({len(result.rows)} rows) and {result.card}")


@app.command("youcook2")
@option_group(_setup, "make_setup")
def youcook2_command(
    annotations: Annotated[
        Path | None,
        typer.Option("--annotations", help="youcookii_annotations_trainval.json (with --videos)."),
    ] = None,
    videos: Annotated[
        Path | None, typer.Option("--videos", help="Folder of the raw videos (<id>.mp4 anywhere under it).")
    ] = None,
    pkl: Annotated[
        Path | None, typer.Option("--pkl", help="The HowTo100M release's youcook_val.pkl instead.")
    ] = None,
    subset: Annotated[
        str,
        choice_option("--subset", YOUCOOK2_SUBSETS, "validation is the papers' split."),
    ] = "validation",
    *,
    make_setup: Callable[[], Any],
) -> None:
    """YouCook2 text-to-clip retrieval (R@1/5/10, MedR, MeanR) over all validation clips."""
    from tasks.evaluation.run import eval_youcook2

    if (pkl is None) == (annotations is None):
        fail("give --annotations FILE with --videos DIR, or --pkl youcook_val.pkl")
    if annotations is not None and videos is None:
        fail("--annotations needs --videos DIR (the raw YouCook2 videos)")
    setup = make_setup()
    _run(lambda: eval_youcook2(setup, annotations, videos, pkl, subset))


@app.command("msrvtt")
@option_group(_setup, "make_setup")
def msrvtt_command(
    csv: Annotated[Path, typer.Option("--csv", help="MSRVTT_JSFUSION_test.csv (the 1k-A test sentences).")],
    features: Annotated[
        Path | None, typer.Option("--features", help="The release's MSRVTT_JSFUSION_test.pth.")
    ] = None,
    videos: Annotated[Path | None, typer.Option("--videos", help="Folder of the raw videos instead.")] = None,
    *,
    make_setup: Callable[[], Any],
) -> None:
    """MSR-VTT 1k-A text-to-video retrieval."""
    from tasks.evaluation.run import eval_msrvtt

    if (features is None) == (videos is None):
        fail("give --features MSRVTT_JSFUSION_test.pth or --videos DIR")
    setup = make_setup()
    _run(lambda: eval_msrvtt(setup, csv, features, videos))


@app.command("crosstask")
@option_group(_setup, "make_setup")
def crosstask_command(
    release: Annotated[
        Path,
        typer.Option(
            "--release", help="crosstask_release folder: tasks_primary.txt, videos*.csv, annotations/."
        ),
    ],
    videos: Annotated[
        Path, typer.Option("--videos", help="Folder of the raw videos (<id>.mp4 anywhere under it).")
    ],
    split: Annotated[
        str,
        choice_option(
            "--split", CROSSTASK_SPLITS, "test: the zero-shot protocol (val out, 30 per task for training)."
        ),
    ] = "test",
    n_train: Annotated[
        int, typer.Option("--n-train", min=0, help="Videos per task kept for training (test split).")
    ] = 30,
    window_s: Annotated[
        float,
        typer.Option(
            "--window-s",
            min=0.5,
            callback=finite("--window-s"),
            help="Seconds of video pooled around each second.",
        ),
    ] = 5.0,
    chance_draws: Annotated[
        int,
        typer.Option("--chance-draws", min=0, help="Random score matrices per video for the chance level."),
    ] = 5,
    *,
    make_setup: Callable[[], Any],
) -> None:
    """CrossTask step localisation: recall per primary task and averaged over them."""
    from tasks.evaluation.run import eval_crosstask

    if not release.is_dir():
        why = "is a file, not a folder" if release.exists() else "no such folder"
        fail(f"{release}: {why} (the unpacked crosstask_release)")
    setup = make_setup()
    _run(lambda: eval_crosstask(setup, release, videos, split, n_train, window_s, chance_draws))


@app.command("heldout")
def heldout_command(
    max_clips: Annotated[
        int | None,
        typer.Option("--max-clips", min=2, help="Clips drawn (default: the run's eval_max_clips)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Draw seed, 0 or more (default: the run's seed).", min=0)
    ] = None,
    checkpoint: CheckpointOption = None,
    max_words: MaxWordsOption = None,
    data_root: ExistingDataRootOption = None,
) -> None:
    """Retrieval among clips drawn at random (seeded) across the run's held-out videos."""
    from tasks.evaluation.run import eval_heldout

    setup = _setup(checkpoint=checkpoint, max_words=max_words, data_root=data_root)()
    _run(lambda: eval_heldout(setup, max_clips, seed))


def register(root: typer.Typer) -> None:
    """Mount on the `howto` app (flows/cli.py discovers this)."""
    root.add_typer(app, name="eval")
