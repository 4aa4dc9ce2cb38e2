"""`howto import howto100m`: the published release into tasks, videos, captions, clips and frame_features.

Offline and streaming: caption.json is read one video at a time and cut into shards of
`videos_per_shard` videos in file order; each shard is one `ShardJob` whose `videos` marker (written
last) proves its captions, clips and frame_features shards too. The release's videos that the caption
file never mentions follow in shards of their own. A rerun skips every finished shard.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from storage.catalog import refresh
from storage.layout import DataRoot
from storage.schemas import get_schema
from tasks.common import config_hash, shard_hash
from tasks.howto100m.caption_json import CaptionFileError, iter_entries, open_captions
from tasks.howto100m.layout import (
    IMPORT_SOURCE,
    check_free,
    imported_batches,
    is_imported,
    load_plan,
    remove_batch,
    remove_imports,
    remove_plan,
    save_plan,
)
from tasks.howto100m.release import (
    FEATURE_MODELS,
    ReleaseFormatError,
    ReleaseTask,
    VideoTable,
    load_feature_rows,
    read_task_ids,
)
from tasks.howto100m.rows import FeatureRows, ShardRows
from tasks.howto100m.staging import discard, publish, staged_batches, staged_root
from tasks.progress import advance
from tasks.shard_runner import SecondaryOutput, ShardJob, ShardOutput, run_job
from tasks.tasks.rows import task_row
from tasks.tasks.task_lists import ImportFormatError
from tasks.wikihow.titles import dedup_key
from tasks.youtube.ids import is_video_id

log = logging.getLogger(__name__)
CLIP_ORDER = [("video_id", "ascending"), ("idx", "ascending")]


class ImportConflict(RuntimeError):
    """The data root already holds an import of other release files."""


class ImportConfig(BaseModel):
    """What decides the imported rows: the files' content, the shard size and the crawl label."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    csv: str
    task_ids: str
    captions: str
    features_2d: str | None = None
    features_3d: str | None = None
    # caption.json had its stop words removed (text_no_stopwords = text); raw_caption.json kept them.
    caption_source: Literal["auto", "caption.json", "raw_caption.json"] = "auto"
    videos_per_shard: int = Field(
        default=100, ge=1, description="videos per shard (its features sit in memory)"
    )
    task_shard_size: int = Field(default=5000, ge=1)
    crawl_id: str = "howto100m"

    def source(self) -> str:
        if self.caption_source != "auto":
            return self.caption_source
        return "raw_caption.json" if "raw" in Path(self.captions).name.lower() else "caption.json"


def file_fingerprint(path: str, whole_below: int = 256 << 20) -> str:
    """Content hash; a multi-GB file is hashed by its size and first and last 4 MiB (seconds, not minutes)."""
    size = os.path.getsize(path)
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        if size <= whole_below:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        else:
            digest.update(handle.read(4 << 20))
            handle.seek(size - (4 << 20))
            digest.update(handle.read())
    return digest.hexdigest()[:16]


def batch_of(cfg: ImportConfig) -> str:
    files = {name: file_fingerprint(getattr(cfg, name)) for name in ("csv", "task_ids", "captions")}
    return config_hash({**cfg.model_dump(mode="json", exclude={"csv", "task_ids", "captions"}), **files,
                        "source": cfg.source()})  # fmt: skip


def task_rows(tasks: list[ReleaseTask], categories: dict[str, tuple[str | None, str | None]],
              crawl_id: str, seen: set[str]) -> list[dict[str, Any]]:  # fmt: skip
    """All of task_ids.csv kept (it is the published list, no verb filter); a repeated title is a duplicate."""
    seen = set(seen)
    rows = []
    for task in tasks:
        key = dedup_key(task.title)
        cat1, cat2 = categories.get(task.source_id, (None, None))
        path = [c for c in (cat2, cat1) if c]  # leaf ... level-1, as mined tasks store it
        rows.append(task_row(
            title=task.title, source_id=task.source_id, source=IMPORT_SOURCE, crawl_id=crawl_id,
            category_path=path, keep=key not in seen, drop_reason="duplicate" if key in seen else None,
        ))  # fmt: skip
        seen.add(key)
    return rows


class Importer:
    """Holds the release's tables while the caption file streams past."""

    def __init__(self, cfg: ImportConfig, root: DataRoot, batch: str) -> None:
        self.cfg, self.root, self.batch = cfg, root, batch
        self.source = cfg.source()
        self.videos = VideoTable.read(cfg.csv)
        self.tasks = read_task_ids(cfg.task_ids)
        self.categories = self.videos.first_categories()
        self.task_map: dict[str, str] = {}
        for task in self.tasks:  # the first line of a release id wins, as in the tasks rows
            self.task_map.setdefault(task.source_id, task.task_id)
        self.level1: dict[str, str | None] = {}
        for t in self.tasks:
            self.level1.setdefault(t.task_id, self.categories.get(t.source_id, (None, None))[0])
        self.plan: dict[str, Any] = {}  # the shard bases, fixed by `start` once the files are checked
        self.staged = False  # a replacing import: markers kept aside until the swap (staging.py)
        self.target = root  # where run_job writes (and looks for) this import's markers
        self.counts: Counter[str] = Counter()
        self.manifests: list[dict[str, Any]] = []

    def config(self, **extra: Any) -> dict[str, Any]:
        return {"source": IMPORT_SOURCE, "import_batch": self.batch, "caption_source": self.source,
                **self.cfg.model_dump(mode="json"), **extra}  # fmt: skip

    def start(self, *, staged: bool) -> None:
        self.staged = staged
        self.target = staged_root(self.root, self.batch) if staged else self.root
        self.plan = load_plan(self.root, self.batch)

    def write_tasks(self) -> None:
        existing = _kept_titles_outside(self.root, self.batch, replacing=self.staged)
        rows = task_rows(self.tasks, self.categories, self.cfg.crawl_id, existing)
        size = self.cfg.task_shard_size
        for i, start in enumerate(range(0, len(rows), size)):
            chunk = rows[start : start + size]
            shard = self.plan["tasks_base"] + i

            def compute(_previous: object, chunk: list[dict[str, Any]] = chunk) -> ShardOutput:
                table = pa.Table.from_pylist(chunk, schema=get_schema("tasks").schema)
                drops = Counter(r["drop_reason"] for r in chunk if r["drop_reason"])
                return ShardOutput(table, len(chunk), dict(drops))

            check_free(self.root, "tasks", shard, self.batch)
            job = ShardJob("tasks", shard, shard_hash(self.batch, "tasks", str(i)), compute,
                           config=self.config(part=i))  # fmt: skip
            self.manifests.append(run_job(self.target, job))
        self.counts["tasks"] = len(rows)

    def entries(self) -> Iterator[tuple[str, Any]]:
        """Caption entries with a plain, new video id (each id once: the first entry wins)."""
        outside: set[str] = set()
        with open_captions(self.cfg.captions) as handle:
            for video_id, entry in iter_entries(handle):
                if not is_video_id(video_id):
                    self.counts["bad_video_id"] += 1
                    continue
                row = self.videos.find(video_id)
                if (row >= 0 and self.videos.seen[row]) or video_id in outside:
                    self.counts["repeated_entry"] += 1
                    continue
                if row >= 0:
                    self.videos.seen[row] = True
                else:
                    outside.add(video_id)
                    self.counts["not_in_csv"] += 1
                yield video_id, entry

    def shard_groups(self) -> Iterator[list[tuple[str, Any]]]:
        """Groups of `videos_per_shard` videos: the caption file's order, then the csv's videos it lacks."""
        group: list[tuple[str, Any]] = []
        for item in self.entries():
            group.append(item)
            if len(group) == self.cfg.videos_per_shard:
                yield group
                group = []
        if group:
            yield group
            group = []
        for row in self.videos.unseen():
            self.counts["no_caption_entry"] += 1
            group.append((str(self.videos.ids[row]), None))
            if len(group) == self.cfg.videos_per_shard:
                yield group
                group = []
        if group:
            yield group

    def write_shard(self, index: int, group: list[tuple[str, Any]]) -> None:
        shard = self.plan["videos_base"] + index
        for dataset in ("videos", "captions", "clips", "frame_features"):
            check_free(self.root, dataset, shard, self.batch)
        with_features = bool(self.cfg.features_2d or self.cfg.features_3d)

        def compute(_previous: object) -> ShardOutput:
            rows = ShardRows(self.cfg.crawl_id, self.source)
            features = FeatureRows()
            for video_id, entry in group:
                at = self.videos.find(video_id)
                meta = self.videos.meta(at) if at >= 0 else None
                task = self.task_map.get(meta.task) if meta and meta.task else None
                if meta and meta.task and task is None:
                    self.counts["unknown_task"] += 1
                category = self.level1.get(task) if task else None
                rows.add(video_id, meta, task, category or (meta.category_1 if meta else None), entry)
                for key, directory in (("2d", self.cfg.features_2d), ("3d", self.cfg.features_3d)):
                    if directory:
                        model, fps = FEATURE_MODELS[key]
                        vectors, error = load_feature_rows(directory, meta, video_id)
                        self.counts[f"features_{key}_missing"] += vectors is None
                        features.add(video_id, model, fps, vectors, error)
            tables = rows.tables()
            self.counts.update(rows.skipped)
            extra = {"caption_source": self.source, "clips": tables["clips"].num_rows, **rows.skipped}
            secondary = [
                SecondaryOutput("captions", tables["captions"], len(group)),
                SecondaryOutput("clips", tables["clips"], len(group), CLIP_ORDER),
            ]
            if with_features:
                order = [("video_id", "ascending"), ("model", "ascending"), ("idx", "ascending")]
                secondary.append(SecondaryOutput("frame_features", features.table(), len(group), order))
            return ShardOutput(tables["videos"], len(group), extra=extra, secondary=secondary)

        job = ShardJob(
            "videos", shard, shard_hash(self.batch, "videos", str(index), *(v for v, _ in group)), compute,
            sort_by=[("video_id", "ascending")], config=self.config(part=index),
            secondaries=("captions", "clips", "frame_features") if with_features else ("captions", "clips"),
        )  # fmt: skip
        self.manifests.append(run_job(self.target, job))


def check_caption_file(path: str) -> None:
    """Read the caption file's first entry: a file that is no caption object at all (garbage, a list, not
    UTF-8, empty) fails here, before any shard is written. A file broken further on still fails while its
    videos stream, and what the import had written is then removed (import_howto100m)."""
    with open_captions(path) as handle:
        next(iter_entries(handle), None)


def _batches_with_rows(root: DataRoot) -> set[str]:
    """Import batches with shards in the root: those that wrote videos, and one that stopped after its tasks
    (its caption file broke before the first videos shard), whose task rows would otherwise stay beside the
    next import's and make those duplicates."""
    from storage.shards import list_markers

    batches = set(imported_batches(root))
    batches |= {str(m.config.get("import_batch")) for m in list_markers(root, "tasks") if is_imported(m)}
    return batches


def _kept_titles_outside(root: DataRoot, batch: str, *, replacing: bool) -> set[str]:
    """De-dup keys of titles kept by other imports and crawls (not this one's earlier run; when `replacing`,
    not the imports it replaces either: they are still there while it runs, and go only once it is done)."""
    from storage.shards import list_markers, read_shard

    keys: set[str] = set()
    for marker in list_markers(root, "tasks"):
        if marker.config.get("import_batch") == batch or (replacing and is_imported(marker)):
            continue
        table = read_shard(root, "tasks", marker.shard)
        if table is not None:
            for title, keep in zip(
                table.column("title").to_pylist(), table.column("keep").to_pylist(), strict=True
            ):
                if keep and title:
                    keys.add(dedup_key(title))
    return keys


def _write_all(importer: Importer) -> int:
    """Write every shard; returns how many `videos` shards the import has. A broken release file found while
    streaming removes what this import wrote (staged or not) and raises."""
    root, batch = importer.root, importer.batch
    n_shards = n_videos = 0
    try:
        importer.write_tasks()
        for index, group in enumerate(importer.shard_groups()):
            importer.write_shard(index, group)
            n_shards += 1
            n_videos += len(group)
            # The csv lists the release's videos; caption entries outside it (rare) only push the total up.
            advance("howto100m import: videos", n_videos, max(len(importer.videos), n_videos))
            if n_shards % 50 == 0:
                log.info("howto100m import: %d shards", n_shards)
    except (CaptionFileError, ReleaseFormatError, ImportFormatError):
        # A release file broken past its start (a caption.json cut short is found only as it streams) fails
        # the import for good: what it wrote is removed, so the repaired file imports without --replace and
        # no half import stays in the catalog; an import it was to replace was never touched. A crash or a
        # kill keeps its shards (staged ones staged), for the rerun to resume.
        if importer.staged:
            discard(root, batch)
        else:
            remove_batch(root, batch)
            remove_plan(root, batch)
        raise
    return n_shards


def import_howto100m(
    cfg: ImportConfig, data_root: str | None = None, *, replace: bool = False
) -> dict[str, Any]:
    """Import the release; returns a summary (rows, shards written and cached, what was skipped and why).

    The same files again write nothing. Other release files (a corrected caption.json) need `replace`: the
    new import is staged beside the earlier one, which is removed (with the training pairs made from it)
    only once the new one has finished. A replace that fails leaves the earlier import as it was.
    """
    root = DataRoot.from_any(data_root)
    batch = batch_of(cfg)
    # Every release file is read or checked before anything in the root is removed or written.
    importer = Importer(cfg, root, batch)
    check_caption_file(cfg.captions)
    others = sorted(b for b in _batches_with_rows(root) if b != batch)
    if others and not replace:
        raise ImportConflict(
            f"{root.url} already holds a HowTo100M import of other files (batch {others[0]}); "
            "pass --replace to replace it"
        )
    # A replace of yet other files that stopped before its swap is superseded by this import: its shard
    # numbers are given back before this one's are fixed.
    for stale in sorted(staged_batches(root) - {batch}):
        discard(root, stale)
    staged = bool(others)
    if not staged:
        publish(root, batch)  # a swap cut short by a kill (the import it replaced already gone): finish it
    importer.start(staged=staged)
    n_shards = _write_all(importer)
    removed = 0
    if staged:  # the swap: the old import out, then the new one's markers in (a kill here: the rerun ends it)
        removed = remove_imports(root, keep_batch=batch)
        for other in others:
            remove_plan(root, other)  # its shard bases name numbers it no longer holds
        publish(root, batch)
    save_plan(root, {**importer.plan, "n_video_shards": n_shards})
    refresh(root)
    written = [m for m in importer.manifests if m["dataset"] == "videos"]
    counts = dict(sorted(importer.counts.items()))
    return {
        "stage": "import_howto100m",
        "caption_source": importer.source,
        "tasks": counts.pop("tasks", 0),
        "videos": sum(m["rows_out"] for m in written),
        "clips": sum(int(m.get("clips") or 0) for m in written),
        "shards": n_shards,
        "shards_cached": sum(1 for m in written if m["cached"]),
        "first_shard": importer.plan["videos_base"],
        "csv_bad_lines": importer.videos.bad_lines,
        "csv_repeated_videos": importer.videos.duplicates,
        "replaced_shards": removed,
        "counts": counts,
    }
