"""CLI: `howto train`, `howto search-clips "query"`, `howto bench train`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from flows.cli_common import DataRootOption, ExistingDataRootOption, bench_app, fail


def train_command(
    data_root: DataRootOption = None,
    epochs: Annotated[
        int, typer.Option(min=1, help="Epochs in total (a rerun resumes after the last one).")
    ] = 10,
    text: Annotated[str, typer.Option(help="Text side: minilm, word2vec or learned.")] = "minilm",
    word2vec: Annotated[
        Path | None, typer.Option(help="word2vec file (.bin or .txt) for --text word2vec.")
    ] = None,
    loss: Annotated[str, typer.Option(help="max_margin (HowTo100M), milnce or infonce.")] = "max_margin",
    d: Annotated[int, typer.Option(min=2, help="Joint embedding size.")] = 4096,
    lr: Annotated[float, typer.Option(help="Adam learning rate (x0.9 per epoch).")] = 1e-4,
    videos_per_batch: Annotated[int, typer.Option(min=1)] = 32,
    clips_per_video: Annotated[int, typer.Option(min=1)] = 64,
    heldout_fraction: Annotated[float, typer.Option(help="Share of videos held out (by hash of id).")] = 0.1,
    shuffle_pairs: Annotated[bool, typer.Option(help="Control run: captions shuffled across clips.")] = False,
    run_id: Annotated[
        str | None, typer.Option(help="Name of the run (default: from config and data).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    precision: Annotated[
        str, typer.Option(help="fp32, bf16, or auto (bf16 where the hardware has it natively).")
    ] = "fp32",
    seed: int = 0,
) -> None:
    """Train the text-video joint embedding on the data root's clips and frame features."""
    from pydantic import ValidationError

    from tasks.training.config import TrainConfig

    if word2vec is not None and not word2vec.is_file():
        fail(f"{word2vec}: no such word2vec file")
    if text == "word2vec" and word2vec is None:
        fail("--text word2vec needs --word2vec FILE")
    try:
        cfg = TrainConfig(
            text=text,
            word2vec_path=str(word2vec) if word2vec else None,
            loss=loss,
            d=d,
            lr=lr,  # type: ignore[arg-type]
            epochs=epochs,
            videos_per_batch=videos_per_batch,
            clips_per_video=clips_per_video,
            heldout_fraction=heldout_fraction,
            shuffle_pairs=shuffle_pairs,
            run_id=run_id,
            device=device,
            precision=precision,  # type: ignore[arg-type]
            seed=seed,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"--{'-'.join(str(p) for p in first['loc'])}: {first['msg']}")
    from flows.train_embedding import train_embedding
    from models.text import Word2VecFormatError
    from tasks.training.run import TrainingDataError
    from tasks.training.torchrun import launched_by_torchrun, train_distributed

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


def search_clips_command(
    query: Annotated[str, typer.Argument(help='What to look for, e.g. "how to slice zucchini".')],
    k: Annotated[int, typer.Option("--k", min=1, help="How many clips to print.")] = 10,
    run_id: Annotated[str | None, typer.Option(help="Run to use (default: the newest checkpoint).")] = None,
    data_root: ExistingDataRootOption = None,
) -> None:
    """Embed the text with the latest checkpoint and print the best clips (video, span, caption, score)."""
    from storage.layout import DataRoot
    from tasks.training.search import NoCheckpoint, search_clips

    if not query.strip():
        fail("query: empty text")
    try:
        path, hits = search_clips(DataRoot.from_any(data_root), query, k, run_id)
    except NoCheckpoint as exc:
        fail(str(exc))
    typer.echo(f"checkpoint: {path}")
    for rank, hit in enumerate(hits, 1):
        span = f"{hit['start_ms'] / 1000:.1f}-{hit['end_ms'] / 1000:.1f}s"
        typer.echo(f"{rank:2d}. {hit['score']:+.3f}  {hit['video_id']}  {span:>13}  {hit['text']}")


def bench_train_command(
    steps: Annotated[int, typer.Option(min=1, help="Timed training steps (after one warm-up step).")] = 3,
    d: Annotated[int, typer.Option(min=2, help="Joint embedding size.")] = 4096,
    videos: Annotated[int, typer.Option(min=1, help="Videos per batch.")] = 32,
    clips: Annotated[int, typer.Option(min=1, help="Clips per video.")] = 64,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Training pairs/s at d=4096, batch 32x64, vs an fp32 matmul ceiling measured in the same run."""
    from tasks.bench.training import run_bench

    typer.echo("note: shared machine; numbers are noisy. Data: random pairs written to Parquet, read back.")
    with tempfile.TemporaryDirectory(prefix="howto-bench-train-") as tmp:
        run_bench(Path(tmp), steps, d, videos, clips, device, log=typer.echo)


def register(app: typer.Typer) -> None:
    """Mount on the `howto` app (flows/cli.py discovers this)."""
    app.command("train")(train_command)
    app.command("search-clips")(search_clips_command)
    bench_app.command("train")(bench_train_command)
