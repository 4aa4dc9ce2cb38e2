"""Hugging Face export: a `datasets` dataset saved to disk (one row per clip) with a dataset card.

Publishing is one call on a machine with a token: `load_from_disk(out).push_to_hub("org/name")`, then
upload `README.md` beside it (`huggingface_hub.HfApi().upload_file`); nothing here talks to the Hub.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from storage.atomic import TMP_PREFIX
from storage.layout import DataRoot
from tasks.exports.select import ExportFilter, NothingToExport, Selection, require_categories
from tasks.exports.staging import staged_export
from tasks.exports.target import check_target, write_marker
from tasks.report.markdown_text import md_text

TEXT_FIELDS = {"clip_id": "string", "video_id": "string", "task_id": "string", "category": "string",
               "idx": "int32", "start_ms": "int64", "end_ms": "int64", "text": "string",
               "text_no_stopwords": "string", "n_words": "int32"}  # fmt: skip
VIDEO_DIM = 4096  # max-pooled ResNet-152 (2048) then ResNeXt-101 (2048), each L2'd
OTHER_WIDTH = "other_video_width"  # held back: a clip whose vector is not as wide as the first one's
RANDOM_WEIGHT_VIDEOS = "random_weight_videos"  # a count beside the held-back ones, not a reason to hold back


def _rows(
    root_url: str, filt: dict[str, Any], features: str, counts: Counter[str], width: int = VIDEO_DIM
) -> Iterator[dict[str, Any]]:
    """One dict per clip; a module-level generator with small arguments, so `datasets` can fingerprint it."""
    selection = Selection(DataRoot.from_any(root_url), ExportFilter(**filt))
    for part in selection.shards():
        clips = part.clips
        vectors: dict[str, Any] = {}
        if features == "pooled":
            pooled = selection.pooled_vectors(part, counts)
            if pooled is None:
                continue
            vectors = pooled
        for row in clips.select(list(TEXT_FIELDS)).to_pylist():
            if features == "pooled":
                if row["clip_id"] not in vectors:
                    continue
                if len(vectors[row["clip_id"]]) != width:  # the column is fixed-width (a root of mixed
                    counts[OTHER_WIDTH] += 1  # feature files): held back and counted, not a crash
                    continue
                row["video"] = np.asarray(vectors[row["clip_id"]], dtype=np.float16)
                selection.exported((row["video_id"],))
            counts["rows"] += 1
            yield row
    counts.update(selection.held_back())
    counts[RANDOM_WEIGHT_VIDEOS] += len(selection.random_weight_videos)


def export_hf(
    root: DataRoot, out: Path, filt: ExportFilter, *, features: Literal["pooled", "none"] = "pooled",
    name: str = "howto-clips",
) -> dict[str, Any]:  # fmt: skip
    """Save the selection with `Dataset.save_to_disk` and write README.md (the dataset card) beside it."""
    import datasets
    from datasets import Dataset, Features, List, Value

    datasets.disable_progress_bars()
    spec: dict[str, Any] = {k: Value(v) for k, v in TEXT_FIELDS.items()}
    counts: Counter[str] = Counter()
    # Before anything is made: never the data root, a file, a user's folder, nor a folder it cannot write
    # (its temp folders go beside `out`, so that parent too).
    check_target(root, out, "hf", beside=True)
    require_categories(root, filt)  # here: raised inside `datasets`' generator it would come out wrapped
    width = _video_width(root, filt) if features == "pooled" else VIDEO_DIM
    if features == "pooled":
        spec["video"] = List(Value("float16"), length=width)
    # One export into a folder at a time; under the lock, what a killed export left is cleaned up first.
    with staged_export(out, "hf") as staged:
        check_target(root, out, "hf")  # again under the lock: `recover` may have put the previous one back
        cache = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}hf-cache-", dir=staged.parent))
        try:
            # `datasets` writes Arrow files as the generator runs (nothing is held whole in memory).
            try:
                ds = Dataset.from_generator(
                    _rows, features=Features(spec), cache_dir=str(cache),
                    gen_kwargs={"root_url": root.url, "filt": filt.model_dump(), "features": features,
                                "counts": counts, "width": width},
                )  # fmt: skip
            except ValueError:
                if counts["rows"]:
                    raise
                # `datasets` cannot make a split of no rows ("corresponds to no data!")
                raise NothingToExport(filt, counts, features) from None
            ds.save_to_disk(str(staged))
            write_marker(staged, "hf")
            held = {k: v for k, v in sorted(counts.items()) if k not in ("rows", RANDOM_WEIGHT_VIDEOS) and v}
            random = counts[RANDOM_WEIGHT_VIDEOS] if features == "pooled" else 0
            (staged / "README.md").write_text(dataset_card(name, ds, filt, held, random), encoding="utf-8")
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    return {"format": "hf", "path": str(out), "rows": ds.num_rows, "features": features, "held_back": held,
            RANDOM_WEIGHT_VIDEOS: random}  # fmt: skip


def _video_width(root: DataRoot, filt: ExportFilter) -> int:
    """How wide the pooled vectors are: 4096 for the reference features, another width for an imported
    release of other feature files (a fixed 4096 failed inside `datasets` with a traceback). Read from the
    first shard that pools a clip; 4096 when none does (the export then holds no row)."""
    selection = Selection(root, filt)
    for part in selection.shards():
        pooled = selection.pooled_vectors(part, Counter())
        if pooled:
            return len(next(iter(pooled.values())))
    return VIDEO_DIM


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")):  # fmt: skip
        if n < limit:
            return label
    return "100M<n<1B"


def dataset_card(name: str, ds: Any, filt: ExportFilter, held: dict[str, int], random_videos: int = 0) -> str:
    """The dataset card: Hub metadata (YAML) and what the rows are, how they were chosen, how to load them.
    Categories (wikiHow's, from the data), reasons and the name are Markdown text: the Hub renders the card."""
    import yaml

    meta = {
        "pretty_name": name,
        "language": ["en"],
        "license": "other",
        "size_categories": [_size_category(ds.num_rows)],
        "task_categories": ["feature-extraction", "text-retrieval"],
        "tags": ["howto100m", "video", "narration", "instructional-videos"],
        "dataset_info": {
            "features": ds.features._to_yaml_list(),
            "splits": [{"name": "train", "num_examples": ds.num_rows}],
        },
    }
    video = "video" in ds.features
    width = ds.features["video"].length if video else VIDEO_DIM
    lines = [
        "---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).strip(), "---", "",
        f"# {md_text(name)}", "",
        "Narrated instructional-video clips in the HowTo100M layout: one row per caption line of a video,",
        "with the span it covers (integer milliseconds) and, when `video` is present, the clip's video vector:",
        "ResNet-152 (2D, 1 row/s) and ResNeXt-101 (3D, 1.5 rows/s) features max-pooled over the span,",
        f"each L2-normalised, then concatenated (2D first) into {width} float16 values." if video else
        "(exported without video vectors).",
        *(["", f"**WARNING: the video vectors of {random_videos:,} video(s) come from random-weight CNNs, not "
            "pretrained ones: fine for trying a pipeline, meaningless for research.**"] if random_videos else []),
        "", "## Fields", "",
        "| field | type | meaning |", "| --- | --- | --- |",
        "| clip_id | string | `{video_id}_{idx:04d}` |",
        "| video_id | string | YouTube video id |",
        "| task_id | string | the wikiHow task (hash of its title) the video was found for |",
        "| category | string | the task's level-1 wikiHow category |",
        "| idx | int32 | position of the clip in its video |",
        "| start_ms, end_ms | int64 | the clip's span in the video, milliseconds |",
        "| text | string | the caption line |",
        "| text_no_stopwords | string | the line without stop words (HowTo100M's caption.json form) |",
        "| n_words | int32 | words in `text` |",
        *([f"| video | float16[{width}] | max-pooled, L2'd 2D+3D features over the span |"] if video else []),
        "", "## How the rows were chosen", "",
        f"- videos: {'kept by every stage only' if filt.keep == 'kept' else 'all, rejected ones included'}",
        f"- categories: {', '.join(map(md_text, filt.categories)) if filt.categories else 'all'}",
        f"- split: {filt.split} (held-out videos by hash of the id, fraction {filt.heldout_fraction})",
        f"- rows: {ds.num_rows}; held back: "
        + (", ".join(f"{md_text(k)} {v}" for k, v in sorted(held.items())) or "none"),
        "", "## Use", "", "```python", "from datasets import load_from_disk",
        'ds = load_from_disk("PATH").with_format("numpy")', "```", "",
        "To publish (needs a Hugging Face token; `huggingface-cli login`):", "", "```python",
        'ds.push_to_hub("ORG/NAME")',
        "from huggingface_hub import HfApi",
        'HfApi().upload_file(path_or_fileobj="PATH/README.md", path_in_repo="README.md",',
        '                    repo_id="ORG/NAME", repo_type="dataset")', "```", "",
        "## Licence and sources", "",
        "Captions are YouTube narration (automatic or uploaded subtitles); the videos belong to their",
        "owners. HowTo100M itself is distributed for research; check the terms of each source before use.",
        "",
    ]  # fmt: skip
    return "\n".join(lines)
