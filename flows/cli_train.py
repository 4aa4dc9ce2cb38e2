"""CLI: `howto train`, `howto train compare`, `howto search-clips "query"`, `howto bench train`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from flows.cli_common import (
    LOSSES,
    TEXTS,
    DataRootOption,
    DeviceOption,
    ExistingDataRootOption,
    IsaOption,
    bench_app,
    choice_option,
    fail,
    field_choices,
    finite,
    require_device,
    require_utf8,
    rerun_if_capped,
)
from flows.terminal_text import terminal_safe
from tasks.bench.ceiling_timing import CEILING_SAMPLE_SECONDS, CEILING_SECONDS
from tasks.train.config import DEFAULT_METHODS, PRESETS, TrainConfig

OBJECTIVES = field_choices(TrainConfig, "objective")
PRECISIONS = field_choices(TrainConfig, "precision")
CLIP_POOLS = field_choices(TrainConfig, "clip_pool")
SCHEDULES = field_choices(TrainConfig, "schedule")

if TYPE_CHECKING:  # not imported at run time: `howto --help` must not load torch
    from storage.layout import DataRoot
    from tasks.audio.fac_compare import AudioComparison
    from tasks.train.compare import MethodResult
    from tasks.train.compare_benchmarks import BenchmarkFiles
    from tasks.train.config import TrainConfig


train_app = typer.Typer(
    invoke_without_command=True,
    help="Train the text-video joint embedding (or `howto train compare` the seed methods).",
)

# Options that a preset's recipe may set; given on the command line they override it.
_PRESET_FIELDS = (
    "epochs", "text", "loss", "objective", "d", "lr", "videos_per_batch", "clips_per_video",
    "heldout_fraction", "shuffle_pairs", "clip_pool", "clip_context_s", "schedule", "lr_decay", "warmup_steps",
    "clip_norm", "adam_betas", "weight_decay",
)  # fmt: skip


# The optimiser's recipe (the papers' schedules, clipping, betas, weight decay): options of `howto train` and
# of `howto train compare` (there applied to every method's runs).
ScheduleOption = Annotated[
    str,
    choice_option(
        "--schedule",
        SCHEDULES,
        "epoch_decay: x--lr-decay after every epoch (HowTo100M); warmup_cosine (MIL-NCE) or warmup_linear "
        "(VideoCLIP): --warmup-steps steps up to --lr, then decay to 0 at the run's last step.",
    ),
]
LrDecayOption = Annotated[
    float, typer.Option(help="Rate factor after every epoch (--schedule epoch_decay); 1: constant.")
]
WarmupStepsOption = Annotated[
    int, typer.Option(min=0, help="Optimiser steps of warm-up (the warm-up schedules; MIL-NCE 10k).")
]
ClipNormOption = Annotated[
    float | None, typer.Option(help="Clip the global gradient norm to this before each step (VideoCLIP 2.0).")
]
AdamBetasOption = Annotated[str, typer.Option(help="Adam's betas B1,B2 (VideoCLIP: 0.9,0.98).")]
WeightDecayOption = Annotated[
    float, typer.Option(min=0, help="> 0: AdamW's decoupled weight decay (0: Adam).")
]


def _parse_betas(text: str) -> tuple[float, float]:
    """--adam-betas "B1,B2": two numbers, each in [0, 1)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        betas = tuple(float(p) for p in parts)
    except ValueError:
        betas = ()
    if len(betas) != 2:
        fail(f"--adam-betas {text!r}: two numbers B1,B2 (Adam's default 0.9,0.999; VideoCLIP's 0.9,0.98)")
    if not all(0 <= b < 1 for b in betas):
        fail(f"--adam-betas {text!r}: each must be in [0, 1)")
    return betas[0], betas[1]


def _check_schedule(schedule: str, warmup_steps: int) -> None:
    """A warm-up fits the warm-up schedules only: refused in the command's own terms (the config refuses the
    same of its fields, in theirs)."""
    if warmup_steps and schedule == "epoch_decay":
        fail(f"--warmup-steps {warmup_steps} is for --schedule warmup_cosine or warmup_linear "
             "(epoch_decay has no warm-up)")  # fmt: skip


def _check_word2vec(path: Path) -> None:
    """The --word2vec file, checked before any stage runs (a wrong file used to fail only after the pairs
    stage had rewritten clip_pairs): a readable file whose first line is word2vec's '<words> <dim>'
    header, the first thing models/text.py load_word2vec checks, with its error and message."""
    from models.text import read_word2vec_header
    from tasks.train.objective_run import WORD2VEC_HELP

    if path.is_dir():
        fail(f"{path}: is a directory, not a word2vec file; {WORD2VEC_HELP}")
    if not path.is_file():
        fail(f"{path}: no such word2vec file; {WORD2VEC_HELP}")
    try:
        with path.open("rb") as handle:
            read_word2vec_header(handle, str(path))
    except OSError as exc:
        fail(f"{path}: cannot read the word2vec file: {exc.strerror or exc}")


def _config_error(exc: Exception) -> NoReturn:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = "-".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")  # a check across fields names them itself
        fail(f"--{where.replace('_', '-')}: {message}" if where else message)
    fail(str(exc))


@train_app.callback()
def train_command(
    ctx: typer.Context,
    data_root: DataRootOption = None,
    preset: Annotated[
        str | None,
        choice_option("--preset", tuple(PRESETS), "A seed method's recipe (howto100m: the reference)."),
    ] = None,
    objective: Annotated[
        str, choice_option("--objective", OBJECTIVES, "Training objective; pairs: caption lines + --loss.")
    ] = "pairs",
    epochs: Annotated[
        int, typer.Option(min=1, help="Epochs in total (a rerun resumes after the last one).")
    ] = 10,
    text: Annotated[str, choice_option("--text", TEXTS, "Text side of the embedding.")] = "minilm",
    word2vec: Annotated[
        Path | None, typer.Option(help="word2vec file (.bin or .txt) for --text word2vec.")
    ] = None,
    loss: Annotated[
        str, choice_option("--loss", LOSSES, "Loss of objective pairs; HowTo100M: max_margin.")
    ] = "max_margin",
    d: Annotated[int, typer.Option(min=2, help="Joint embedding size.")] = 4096,
    lr: Annotated[
        float,
        typer.Option(help="Learning rate: the first epoch's (epoch_decay) or the peak after the warm-up."),
    ] = 1e-4,
    schedule: ScheduleOption = "epoch_decay",
    lr_decay: LrDecayOption = 0.9,
    warmup_steps: WarmupStepsOption = 0,
    clip_norm: ClipNormOption = None,
    adam_betas: AdamBetasOption = "0.9,0.999",
    weight_decay: WeightDecayOption = 0.0,
    videos_per_batch: Annotated[
        int, typer.Option(min=1, help="Videos per batch; their clips are each other's negatives.")
    ] = 32,
    clips_per_video: Annotated[
        int, typer.Option(min=1, help="Clips drawn per video and batch (at most).")
    ] = 64,
    heldout_fraction: Annotated[float, typer.Option(help="Share of videos held out (by hash of id).")] = 0.1,
    shuffle_pairs: Annotated[bool, typer.Option(help="Control run: captions shuffled across clips.")] = False,
    clip_pool: Annotated[
        str, choice_option("--clip-pool", CLIP_POOLS, "How a clip's feature rows are pooled; HowTo100M: max.")
    ] = "max",
    clip_context_s: Annotated[
        float, typer.Option(min=0, max=60, help="Seconds of video around each clip pooled with it.")
    ] = 0.0,
    run_id: Annotated[
        str | None, typer.Option(help="Name of the run (default: from config and data).")
    ] = None,
    device: DeviceOption = "auto",
    precision: Annotated[
        str, choice_option("--precision", PRECISIONS, "auto: bf16 where the hardware has it natively.")
    ] = "fp32",
    seed: Annotated[
        int, typer.Option(min=0, help="Seed of the initial weights, the batches and the split draws.")
    ] = 0,
) -> None:
    """Train the text-video joint embedding on the data root's clips and frame features."""
    if ctx.invoked_subcommand is not None:
        return
    from tasks.train.config import TrainConfig
    from tasks.train.config import preset as preset_config
    from tasks.train.objective_run import WORD2VEC_HELP

    if word2vec is not None:
        _check_word2vec(word2vec)
    if text == "word2vec" and word2vec is None:
        fail(f"--text word2vec needs --word2vec FILE; {WORD2VEC_HELP}")
    if run_id is not None:
        from tasks.train.checkpoints import check_name

        check_name(run_id, "--run-id")  # one folder under train/: never a path out of the data root
    values: dict[str, Any] = {**locals(), "adam_betas": _parse_betas(adam_betas)}
    # typer vendors its own click: compare the parameter source by name.
    given = {
        f: values[f]
        for f in _PRESET_FIELDS
        if getattr(ctx.get_parameter_source(f), "name", "") == "COMMANDLINE"
    }
    common: dict[str, Any] = {
        "word2vec_path": str(word2vec) if word2vec else None,
        "run_id": run_id,
        "device": device,
        "precision": precision,
        "seed": seed,
    }
    recipe = PRESETS[preset] if preset is not None else {}
    _check_schedule(str(given.get("schedule", recipe.get("schedule", schedule))), warmup_steps)
    try:
        if preset is not None:
            cfg = preset_config(preset, **given, **common)
        else:
            cfg = TrainConfig(**{f: values[f] for f in _PRESET_FIELDS}, **common)
    except ValueError as exc:
        _config_error(exc)
    if cfg.text == "word2vec" and not cfg.word2vec_path:
        fail(f"--preset {preset} trains on word2vec and needs --word2vec FILE; {WORD2VEC_HELP}")
    require_device(cfg.device)
    _require_training_input(data_root)
    from flows.train_embedding import train_embedding
    from models.text import Word2VecFormatError
    from tasks.train.run import TrainingDataError
    from tasks.train.torchrun import launched_by_torchrun, train_distributed

    try:
        if launched_by_torchrun():
            summary = train_distributed(cfg, data_root)
            if "metrics" not in summary:  # ranks other than 0 have nothing to report
                return
        else:
            summary = train_embedding(cfg, data_root)
    except (TrainingDataError, Word2VecFormatError) as exc:
        fail(str(exc))
    metrics = summary.get("metrics") or {}
    typer.echo(
        f"run {summary.get('run_id')}: {summary.get('epochs')} epochs, held-out "
        + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
    )
    typer.echo(f"checkpoint: {summary.get('checkpoint')}")


def _require_training_input(data_root: str | None) -> None:
    """A root with neither clip_pairs nor the clips and frame_features to pool them from is refused before
    Prefect starts (the flow said so too, 20 s later, after starting its temporary server)."""
    from storage.layout import DataRoot
    from storage.shards import list_markers
    from tasks.train.prepare import no_pairs_message, ready_shards

    root = DataRoot.from_any(data_root)
    if not list_markers(root, "clip_pairs") and not ready_shards(root):
        fail(no_pairs_message(root))


@train_app.command("compare")
def compare_command(
    data_root: DataRootOption = None,
    methods: Annotated[
        str,
        typer.Option(
            help="Comma-separated: max_margin, infonce, milnce_inbatch, howto100m, milnce, videoclip, "
            "videoclip_random, videoclip_transformer, tvts."
        ),
    ] = ",".join(DEFAULT_METHODS),
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds; the table shows mean ± sd.")] = "0,1,2",
    control: Annotated[
        str, typer.Option(help="Method trained on shuffled captions as the control ('' for none).")
    ] = "infonce",
    epochs: Annotated[int, typer.Option(min=1, help="Epochs of every run.")] = 24,
    text: Annotated[str, choice_option("--text", TEXTS, "Text side of every method.")] = "minilm",
    word2vec: Annotated[Path | None, typer.Option(help="word2vec file for --text word2vec.")] = None,
    d: Annotated[int, typer.Option(min=2, help="Joint embedding size.")] = 256,
    lr: Annotated[
        float,
        typer.Option(help="Learning rate: the first epoch's (epoch_decay) or the peak after the warm-up."),
    ] = 3e-3,
    schedule: ScheduleOption = "epoch_decay",
    lr_decay: LrDecayOption = 0.9,
    warmup_steps: WarmupStepsOption = 0,
    clip_norm: ClipNormOption = None,
    adam_betas: AdamBetasOption = "0.9,0.999",
    weight_decay: WeightDecayOption = 0.0,
    videos_per_batch: Annotated[int, typer.Option(min=1, help="Videos per batch of every run.")] = 8,
    heldout_fraction: Annotated[float, typer.Option(help="Share of videos held out (by hash of id).")] = 0.3,
    clip_pool: Annotated[
        str,
        choice_option("--clip-pool", CLIP_POOLS, "How a clip's feature rows are pooled (every method)."),
    ] = "mean",
    clip_context_s: Annotated[
        float,
        typer.Option(
            min=0, max=60, help="Seconds of video around each clip pooled with it (0: its own span)."
        ),
    ] = 2.0,
    name: Annotated[
        str, typer.Option(help="Where the table goes: <data root>/train/compare/NAME/.")
    ] = "latest",
    device: DeviceOption = "auto",
    audio: Annotated[
        bool | None,
        typer.Option(
            "--audio/--no-audio",
            help="Add FAC, shared and audio-shuffled rows (default: when the root has audio_features).",
        ),
    ] = None,
    audio_epochs: Annotated[int, typer.Option(min=1, help="FAC training epochs (audio rows).")] = 20,
    benchmarks: Annotated[
        bool | None,
        typer.Option(
            "--benchmarks/--no-benchmarks",
            help="Score every run on CrossTask (val) and YouCook2 (validation) in a second table "
            "(default: when benchmark files are given or the root has the demo's, from `howto demo`).",
        ),
    ] = None,
    crosstask_release: Annotated[
        Path | None, typer.Option(help="CrossTask release folder (tasks_primary.txt, videos_val.csv, ...).")
    ] = None,
    youcook2: Annotated[
        Path | None, typer.Option(help="YouCook2 youcookii_annotations_trainval.json.")
    ] = None,
    benchmark_videos: Annotated[
        Path | None, typer.Option(help="Folder of the benchmarks' videos (<id>.mp4 anywhere below).")
    ] = None,
) -> None:
    """Train each seed method on the same data, seeds and split; print and save one table and a plot.

    Defaults are sized for the demo world (`howto demo`): d 256, lr 3e-3 (x0.9 per epoch) for 24 epochs,
    8 videos per batch, 30% of the videos held out, clips mean-pooled with 2 s of context each side
    (HowTo100M's max over the line alone: --clip-pool max --clip-context-s 0). The optimiser's recipe
    (--schedule, --warmup-steps, --lr-decay, --clip-norm, --adam-betas, --weight-decay) applies to every
    method's runs, as `howto train` takes it. Runs are named by method, seed and
    config, so a rerun reuses finished ones. With benchmark files (the demo's under the root, or given)
    every run is also scored on CrossTask and YouCook2; those scores are recorded in eval_metrics, so a
    rerun reuses them too.
    """
    from storage.layout import DataRoot
    from storage.shards import list_markers
    from tasks.train.compare import (
        RECIPES,
        audio_table_lines,
        best_method,
        compare,
        table_lines,
        write_comparison,
    )
    from tasks.train.config import TrainConfig
    from tasks.train.run import TrainingDataError

    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in RECIPES]
    if unknown or not chosen:
        fail(f"--methods: unknown {', '.join(unknown) or '(none given)'}; expected {', '.join(RECIPES)}")
    if control and control not in RECIPES:
        fail(f"--control: unknown {control}; expected {', '.join(RECIPES)}")
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        fail(f"--seeds: expected comma-separated integers, got {seeds!r}")
    if not seed_list:
        fail(f"--seeds: no seed given ({seeds!r}); expected comma-separated integers, e.g. 0,1,2")
    if any(seed < 0 for seed in seed_list):  # numpy's generators take no negative seed (TrainConfig.seed)
        fail(f"--seeds: a seed must be 0 or more, got {seeds!r}")
    from tasks.train.checkpoints import check_name

    check_name(name, "--name")  # before any training: the table goes to one folder under train/compare/
    if word2vec is not None:
        _check_word2vec(word2vec)
    betas = _parse_betas(adam_betas)
    _check_schedule(schedule, warmup_steps)
    try:
        base = TrainConfig(
            text=text,  # type: ignore[arg-type]
            word2vec_path=str(word2vec) if word2vec else None,
            epochs=epochs, d=d, lr=lr, videos_per_batch=videos_per_batch,
            heldout_fraction=heldout_fraction, device=device, clip_pool=clip_pool,  # type: ignore[arg-type]
            clip_context_s=clip_context_s, schedule=schedule, lr_decay=lr_decay,  # type: ignore[arg-type]
            warmup_steps=warmup_steps, clip_norm=clip_norm, adam_betas=betas, weight_decay=weight_decay,
        )  # fmt: skip
    except ValueError as exc:
        _config_error(exc)
    require_device(device)
    root = DataRoot.from_any(data_root)
    has_audio = bool(list_markers(root, "audio_features"))
    if audio and not has_audio:  # before any training: the audio rows could not be made
        fail(f"{root.url}: --audio but no audio_features shards: run `howto audio run` first")
    files = _benchmark_files(root, benchmarks, crosstask_release, youcook2, benchmark_videos)
    _prepare(root, base)
    try:
        results = compare(root, base, chosen, seed_list, control, progress=typer.echo)
    except TrainingDataError as exc:
        fail(str(exc))
    candidates = int(results[0].runs[0]["metrics"].get("candidates") or 0)
    lines = table_lines(results, seed_list, candidates)
    bench_record = None
    if files is not None:
        bench_lines, bench_record = _benchmark_rows(root, results, files, seed_list, heldout_fraction, device)
        lines += bench_lines
    wanted = has_audio if audio is None else audio
    audio_result = _audio_rows(root, wanted, audio_epochs, seed_list, heldout_fraction)
    if audio_result is not None:
        lines += audio_table_lines(audio_result, seed_list)
    paths = write_comparison(root, name, results, lines, base, audio_result, bench_record)
    typer.echo("")
    for line in lines:
        typer.echo(line)
    typer.echo(f"best: {best_method(results).name}; table {paths['table']}, curves {paths['plot']}")


def _benchmark_files(
    root: DataRoot, wanted: bool | None, release: Path | None, youcook2: Path | None, videos: Path | None
) -> BenchmarkFiles | None:
    """The benchmark files to score every run on (checked before any training), or None."""
    from tasks.demo.benchmarks import demo_benchmark_dir
    from tasks.train.compare_benchmarks import BenchmarkFiles, demo_files

    given = {"--crosstask-release": release, "--youcook2": youcook2, "--benchmark-videos": videos}
    if wanted is False:
        return None
    if any(v is not None for v in given.values()):
        missing = [k for k, v in given.items() if v is None]
        if missing:
            fail(f"{', '.join(missing)}: needed too (the benchmark table scores CrossTask and YouCook2)")
        assert release is not None and youcook2 is not None and videos is not None
        for path, is_there in ((release / "tasks_primary.txt", release.is_dir()), (youcook2, youcook2.is_file()),
                               (videos, videos.is_dir())):  # fmt: skip
            if not is_there:
                fail(f"{path}: no such {'file' if path.suffix else 'folder'}")
        return BenchmarkFiles(release, youcook2, videos)
    found = demo_files(root)
    if found is None and wanted:
        fail(
            f"{root.url}: --benchmarks but no demo benchmark files in {demo_benchmark_dir(root)} (`howto demo` "
            "writes them there): "
            "give --crosstask-release, --youcook2 and --benchmark-videos"
        )
    return found


def _benchmark_rows(
    root: DataRoot,
    results: list[MethodResult],
    files: BenchmarkFiles,
    seeds: list[int],
    heldout_fraction: float,
    device: str,
) -> tuple[list[str], dict[str, Any]]:
    """Every run (each method x seed, the control too) on both benchmarks: the table and its record."""
    from tasks.features.config import ExtractFeaturesConfig
    from tasks.features.recorded import recorded_features_config
    from tasks.train.compare_benchmarks import (
        benchmark_record,
        benchmark_table_lines,
        evaluate_all,
        split_note,
    )

    # Benchmark videos must get the features the runs were trained on: the root's recorded config.
    fields: dict[str, Any] = dict(recorded_features_config(root))
    features = ExtractFeaturesConfig(**fields, device=device)
    runs = {r.name: [s["run_id"] for s in r.runs] for r in results}
    typer.echo("")
    # A bad benchmark file or a missing video ends the command as one line (flows/cli_errors.py).
    rows = evaluate_all(root, runs, files, features, progress=typer.echo)
    note = split_note(files, heldout_fraction)
    return benchmark_table_lines(rows, seeds, note), benchmark_record(rows, files, note)


def _audio_rows(
    root: DataRoot, wanted: bool, epochs: int, seeds: list[int], heldout_fraction: float
) -> AudioComparison | None:
    """FAC and its controls on the same split and seeds, when wanted."""
    from tasks.audio.fac_compare import compare_on_root
    from tasks.audio.fac_train import FACTrainConfig

    if not wanted:
        return None
    try:
        return compare_on_root(root, FACTrainConfig(epochs=epochs), seeds, heldout_fraction)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    raise AssertionError("unreachable")


def _prepare(root: DataRoot, base: TrainConfig) -> None:
    """Clip pairs (and the MiniLM text cache) as `howto train` makes them, without training."""
    from tasks.train.prepare import build_pairs_shard, cache_text_shard, ready_shards

    shards = ready_shards(root)
    for shard in shards:
        build_pairs_shard(root, shard, base.pooling)
    if base.text == "minilm":
        from tasks.train.stage import minilm_encode

        for shard in shards:
            cache_text_shard(root, shard, minilm_encode)


def search_clips_command(
    query: Annotated[str, typer.Argument(help='What to look for, e.g. "how to slice zucchini".')],
    k: Annotated[int, typer.Option("--k", min=1, help="How many clips to print.")] = 10,
    run_id: Annotated[
        str | None,
        typer.Option(
            help="Run to use (default: the newest run on the root's clip_pairs, else the newest; never a "
            "control run)."
        ),
    ] = None,
    data_root: ExistingDataRootOption = None,
) -> None:
    """Embed the text with the latest checkpoint and print the best clips (video, span, caption, score)."""
    from storage.layout import DataRoot
    from tasks.train.search import NoCheckpoint, search_clips

    require_utf8(query, "query")
    if not query.strip():
        fail("query: empty text")
    try:
        path, hits = search_clips(DataRoot.from_any(data_root), query, k, run_id)
    except NoCheckpoint as exc:
        fail(str(exc))
    typer.echo(f"checkpoint: {path}")
    for rank, hit in enumerate(hits, 1):
        span = f"{hit['start_ms'] / 1000:.1f}-{hit['end_ms'] / 1000:.1f}s"
        # The caption is a video's (anyone's): its control characters shown as escapes, never obeyed.
        typer.echo(
            f"{rank:2d}. {hit['score']:+.3f}  {hit['video_id']}  {span:>13}  {terminal_safe(hit['text'])}"
        )


def bench_train_command(
    steps: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Timed training steps (after one warm-up step). Default: 8 on a CPU, 40 on a GPU: whole passes over the bench's 8 batches of data in 2 shards, read one shard a window, so the shards are read as often as in a run too large to keep them in memory.",
        ),
    ] = None,
    d: Annotated[int, typer.Option(min=2, help="Joint embedding size.")] = 4096,
    videos: Annotated[int, typer.Option(min=1, help="Videos per batch.")] = 32,
    clips: Annotated[int, typer.Option(min=1, help="Clips per video.")] = 64,
    device: DeviceOption = "auto",
    isa: IsaOption = "native",
    ceiling_seconds: Annotated[
        float,
        typer.Option(
            min=0.05,
            callback=finite("--ceiling-seconds"),
            help="Seconds each measurement of the matmul ceiling runs, before and after each precision's steps "
            f"(samples between the steps take {CEILING_SAMPLE_SECONDS:g} s). Longer is steadier; shorter for a "
            "quick look.",
        ),
    ] = CEILING_SECONDS,
) -> None:
    """Training pairs/s at d=4096, batch 32x64, in fp32 and (where native) bf16, each against the matmul
    ceiling of its own precision measured in the same run, with the shards read every epoch; then the
    precision auto takes once more with the shards kept decoded, as in a run whose shards all fit one
    window."""
    if isa != "native":
        if device not in ("auto", "cpu"):
            fail(f"--isa {isa} caps CPU instructions: use it with --device cpu")
        device = "cpu"  # the caps are for the CPU: auto must not pick a GPU
    argv = [
        "bench",
        "train",
        *(["--steps", str(steps)] if steps else []),
        "--d",
        str(d),
        "--videos",
        str(videos),
    ]
    rerun_if_capped(
        isa,
        [
            *argv,
            "--clips",
            str(clips),
            "--device",
            device,
            "--isa",
            isa,
            "--ceiling-seconds",
            str(ceiling_seconds),
        ],
    )
    require_device(device)
    from tasks.bench.training import run_bench

    typer.echo("note: shared machine; numbers are noisy. Data: random pairs written to Parquet, read back.")
    with tempfile.TemporaryDirectory(prefix="howto-bench-train-") as tmp:
        run_bench(Path(tmp), steps, d, videos, clips, device, log=typer.echo, ceiling_seconds=ceiling_seconds)


def register(app: typer.Typer) -> None:
    """Mount on the `howto` app (flows/cli.py discovers this)."""
    app.add_typer(train_app, name="train")
    app.command("search-clips")(search_clips_command)
    bench_app.command("train")(bench_train_command)
