"""CLI: `howto import howto100m`, `howto export webdataset|hf|howto100m`, `howto bench import`."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli_common import (
    DataRootOption,
    ExistingDataRootOption,
    bench_app,
    crawl_id_option,
    data_root_with_datasets,
    fail,
    finite,
    option_group,
    require_file,
)
from storage.layout import ROOT_ERRNOS, DataRoot, describe_os_error


class CaptionSource(StrEnum):
    auto = "auto"
    caption = "caption.json"
    raw = "raw_caption.json"


def _file(path: Path, what: str) -> str:
    require_file(path, f"file ({what})")
    return str(path)


def _folder(path: Path | None, what: str) -> str | None:
    if path is not None and not path.is_dir():
        fail(f"{path}: {'is a file, not a folder' if path.exists() else 'no such folder'} ({what})")
    return None if path is None else str(path)


def import_howto100m_command(
    csv: Annotated[
        Path, typer.Option("--csv", help="HowTo100M_v1.csv (video_id,category_1,category_2,rank,task_id).")
    ],
    task_ids: Annotated[Path, typer.Option("--task-ids", help="task_ids.csv (id<TAB>title, no header).")],
    captions: Annotated[
        Path, typer.Option("--captions", help="caption.json or raw_caption.json (streamed).")
    ],
    features_2d: Annotated[
        Path | None, typer.Option("--features-2d", help="Folder of per-video 2D .npy or .pth (1 row/s).")
    ] = None,
    features_3d: Annotated[
        Path | None, typer.Option("--features-3d", help="Folder of per-video 3D .npy or .pth (1.5 rows/s).")
    ] = None,
    caption_source: Annotated[
        CaptionSource, typer.Option(help="Which release file --captions is (auto: by its name).")
    ] = CaptionSource.auto,
    videos_per_shard: Annotated[int, typer.Option(min=1, help="Videos per shard.")] = 100,
    crawl_id: Annotated[str, crawl_id_option("Recorded on every row.")] = "howto100m",
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Replace an import of other files (kept until this one is done)."),
    ] = False,
    data_root: DataRootOption = None,
) -> None:
    """Import the published HowTo100M release offline: tasks, videos, captions, clips, frame_features."""
    from tasks.howto100m.caption_json import CaptionFileError
    from tasks.howto100m.import_config import ImportConfig
    from tasks.howto100m.import_stage import ImportConflict, import_howto100m
    from tasks.howto100m.layout import ShardTaken
    from tasks.howto100m.release import ReleaseFormatError
    from tasks.tasks.task_lists import ImportFormatError

    cfg = ImportConfig(
        csv=_file(csv, "--csv"), task_ids=_file(task_ids, "--task-ids"), captions=_file(captions, "--captions"),
        features_2d=_folder(features_2d, "--features-2d"), features_3d=_folder(features_3d, "--features-3d"),
        caption_source=caption_source.value, videos_per_shard=videos_per_shard, crawl_id=crawl_id,
    )  # fmt: skip
    try:
        summary = import_howto100m(cfg, data_root, replace=replace)
    except CaptionFileError as exc:
        fail(f"{captions}: {exc}")
    except ImportFormatError as exc:
        fail(f"{task_ids}: {exc}")
    except (ReleaseFormatError, ImportConflict, ShardTaken) as exc:
        fail(str(exc))
    except OSError as exc:
        if exc.errno in ROOT_ERRNOS:
            fail(describe_os_error(DataRoot.from_any(data_root).url, exc))
        raise
    typer.echo(json.dumps(summary, indent=1))


class Per(StrEnum):
    clip = "clip"
    video = "video"


class Keep(StrEnum):
    kept = "kept"
    all = "all"


class Split(StrEnum):
    all = "all"
    train = "train"
    heldout = "heldout"


KeepOption = Annotated[Keep, typer.Option(help="kept: only videos every stage kept; all: rejected ones too.")]
CategoryOption = Annotated[
    list[str] | None, typer.Option("--category", help="Only this level-1 category (repeatable).")
]
SplitOption = Annotated[Split, typer.Option(help="Training split of the videos (held out by id hash).")]
HeldoutOption = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=1.0,
        help="Held-out fraction for --split (default: that of the run `howto eval` takes, the newest trained "
        "on the root's clip_pairs; else 0.1, training's default).",
    ),
]
OutOption = Annotated[Path, typer.Option("--out", help="Output folder.")]


def _selection(
    keep: KeepOption = Keep.kept,
    category: CategoryOption = None,
    split: SplitOption = Split.all,
    heldout_fraction: HeldoutOption = None,
    data_root: ExistingDataRootOption = None,
) -> tuple[DataRoot, Any]:
    """The options every export shares: the data root and which of its clips leave it."""
    from tasks.exports.select import ExportFilter

    root = data_root_with_datasets(data_root)
    if heldout_fraction is None:
        heldout_fraction = _trained_heldout_fraction(root) if split is not Split.all else 0.1
    filt = ExportFilter(keep=keep.value, categories=tuple(category or ()), split=split.value,
                        heldout_fraction=heldout_fraction)  # fmt: skip
    return root, filt


def _trained_heldout_fraction(root: DataRoot) -> float:
    """--split's held-out fraction when none is given: the one the root's model was trained with, so a
    `--split heldout` export holds the videos its held-out scores were measured on (after `howto demo`,
    which trains with 0.3, the 0.1 default exported a third of them, and 2 of 3 of them sat in `train`)."""
    from tasks.train.checkpoints import default_run_heldout
    from tasks.train.config import TrainConfig

    found = default_run_heldout(root)
    if found is None:
        return float(TrainConfig.model_fields["heldout_fraction"].default)
    run_id, fraction = found
    typer.echo(f"--split: held-out fraction {fraction:g}, as run {run_id} trained with (--heldout-fraction to "
               "choose another)", err=True)  # fmt: skip
    return fraction


def _run_export(run) -> None:  # type: ignore[no-untyped-def]
    from storage.catalog import QueryError

    try:
        summary = run()
    except QueryError as exc:
        fail(str(exc))
    typer.echo(json.dumps(summary, indent=1))
    if summary.get("random_weight_videos"):
        typer.echo(f"warning: the features of {summary['random_weight_videos']} exported video(s) come from "
                   "random weights, not pretrained ones: meaningless for research", err=True)  # fmt: skip


@option_group(_selection, "selection")
def export_webdataset_command(
    out: OutOption,
    per: Annotated[Per, typer.Option(help="One sample per clip or per video.")] = Per.clip,
    features: Annotated[
        str | None,
        typer.Option(
            help="clip: pooled|none (4096-d vector; default pooled); "
            "video: rows|none (per-model rows as stored; default rows)."
        ),
    ] = None,
    samples_per_shard: Annotated[int, typer.Option(min=1, help="Samples per tar shard.")] = 1000,
    *,
    selection: tuple[DataRoot, Any],
) -> None:
    """Tar shards readable by the `webdataset` library: `<key>.json` caption(s) and `.npy` features."""
    from tasks.exports.webdataset import export_webdataset

    allowed = ("pooled", "none") if per is Per.clip else ("rows", "none")
    if features is None:
        features = allowed[0]
    if features not in allowed:
        fail(f"--features {features!r}: per {per.value} takes {', '.join(allowed)}")
    root, filt = selection
    _run_export(lambda: export_webdataset(root, out, filt, per=per.value, features=features,  # type: ignore[arg-type]
                                          samples_per_shard=samples_per_shard))  # fmt: skip


@option_group(_selection, "selection")
def export_hf_command(
    out: OutOption,
    features: Annotated[str, typer.Option(help="pooled (a 4096-d `video` column) or none.")] = "pooled",
    name: Annotated[str, typer.Option(help="Name in the dataset card.")] = "howto-clips",
    *,
    selection: tuple[DataRoot, Any],
) -> None:
    """A Hugging Face `datasets` dataset saved to disk (load_from_disk) with a dataset card README.md."""
    from tasks.exports.hf import export_hf

    if features not in ("pooled", "none"):
        fail(f"--features {features!r}: choose pooled or none")
    root, filt = selection
    _run_export(lambda: export_hf(root, out, filt, features=features, name=name))  # type: ignore[arg-type]


@option_group(_selection, "selection")
def export_release_command(
    out: OutOption,
    features: Annotated[bool, typer.Option(help="Write features_2d/ and features_3d/ .npy files.")] = True,
    *,
    selection: tuple[DataRoot, Any],
) -> None:
    """The HowTo100M release layout: HowTo100M_v1.csv, task_ids.csv, caption.json, raw_caption.json, .npy."""
    from tasks.exports.release import export_release

    root, filt = selection
    _run_export(lambda: export_release(root, out, filt, features=features))


def bench_import_command(
    gb: Annotated[
        float,
        typer.Option(
            "--gb", min=0.001, callback=finite("--gb"), help="Size of the generated caption.json in GB."
        ),
    ] = 1.0,
    workdir: Annotated[
        Path | None, typer.Option(help="Where to generate (default: a temp dir, removed).")
    ] = None,
) -> None:
    """Generate a caption.json of this size (plus csv and task list), import it, print time and peak RSS."""
    from tasks.bench.howto100m import run_import_bench

    for line in run_import_bench(gb, workdir):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    import_app = typer.Typer(help="Import published datasets offline.", no_args_is_help=True)
    import_app.command("howto100m")(import_howto100m_command)
    export_app = typer.Typer(help="Export the data root's clips for other tools.", no_args_is_help=True)
    export_app.command("webdataset")(export_webdataset_command)
    export_app.command("hf")(export_hf_command)
    export_app.command("howto100m")(export_release_command)
    app.add_typer(import_app, name="import")
    app.add_typer(export_app, name="export")
    bench_app.command("import")(bench_import_command)
