"""Writes one import's shards: its tasks, then its videos with their captions, clips and frame_features."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import read_marker
from tasks.common import shard_hash
from tasks.howto100m.caption_json import iter_entries, open_captions
from tasks.howto100m.import_config import ImportConfig
from tasks.howto100m.layout import IMPORT_SOURCE, check_free, load_plan, plan_exists, video_ids_outside
from tasks.howto100m.release import FEATURE_MODELS, VideoTable, load_feature_rows, read_task_ids
from tasks.howto100m.rows import SKIPPED_EXAMPLES, FeatureRows, ShardRows, keep_examples
from tasks.howto100m.staging import staged_root
from tasks.howto100m.task_list import kept_titles_outside, task_rows
from tasks.shard_runner import SecondaryOutput, ShardJob, ShardOutput, run_job
from tasks.youtube.ids import is_video_id

CLIP_ORDER = [("video_id", "ascending"), ("idx", "ascending")]


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
        self.plan: dict[str, Any] = {}  # the shard bases, fixed by `claim` once the files are checked
        self.staged = False  # a replacing import: markers kept aside until the swap (staging.py)
        self.target = root  # where run_job writes (and looks for) this import's markers
        self.counts: Counter[str] = Counter()
        # What the shards skipped, read back from their markers (a rerun's cached shards count too): reason ->
        # count in `counts`, reason -> where (a few per reason) in `examples`.
        self.examples: dict[str, list[str]] = {}
        self.held: set[str] = set()  # videos the root holds outside this import (entries() reads them)
        self.manifests: list[dict[str, Any]] = []

    def config(self, **extra: Any) -> dict[str, Any]:
        return {"source": IMPORT_SOURCE, "import_batch": self.batch, "caption_source": self.source,
                **self.cfg.model_dump(mode="json"), **extra}  # fmt: skip

    def claim(self) -> bool:
        """Fix the shard bases (layout.load_plan: refused while an import of other files is unfinished);
        True when this run wrote the plan, False on a rerun that read it back."""
        first = not plan_exists(self.root, self.batch)
        self.plan = load_plan(self.root, self.batch, captions=os.path.abspath(self.cfg.captions))
        return first

    def start(self, *, staged: bool) -> None:
        self.staged = staged
        self.target = staged_root(self.root, self.batch) if staged else self.root

    def write_tasks(self) -> None:
        existing = kept_titles_outside(self.root, self.batch, replacing=self.staged)
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
        """Caption entries with a plain, new video id (each id once: the first entry wins); a video the root
        already holds (crawled, or another import's) is skipped, and so are csv rows for one (`unseen`)."""
        self.held = video_ids_outside(self.root, self.batch, replacing=self.staged)
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
                if video_id in self.held:
                    self.counts["already_in_root"] += 1
                    outside.add(video_id)  # a second entry for it is a repeat, as for any other
                    continue
                if row < 0:
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
            if str(self.videos.ids[row]) in self.held:
                self.counts["already_in_root"] += 1
                continue
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
                    rows.note("unknown_task", f"{video_id}: task_id {meta.task} is not in task_ids.csv")
                category = self.level1.get(task) if task else None
                rows.add(video_id, meta, task, category or (meta.category_1 if meta else None), entry)
                for key, directory in (("2d", self.cfg.features_2d), ("3d", self.cfg.features_3d)):
                    if directory:
                        model, fps = FEATURE_MODELS[key]
                        vectors, error = load_feature_rows(directory, meta, video_id)
                        if vectors is None:
                            rows.note(f"features_{key}_missing", f"{video_id}: {error}")
                        features.add(video_id, model, fps, vectors, error)
            tables = rows.tables()
            # The counts and where they come from go into the marker: a rerun that finds the shard done
            # reads them back, so its summary reports the same skipped lines as the run that wrote it.
            extra = {"caption_source": self.source, "clips": tables["clips"].num_rows, **rows.skipped,
                     SKIPPED_EXAMPLES: rows.examples}  # fmt: skip
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
        marker = read_marker(self.target, "videos", shard)
        self._count_skipped(marker.extra if marker is not None else {})

    def _count_skipped(self, extra: dict[str, Any]) -> None:
        """Add one shard's skip counts and examples (from its marker's `extra`) to the import's."""
        self.counts.update(
            {k: v for k, v in extra.items() if k != "clips" and type(v) is int}  # the counts: ints
        )
        for reason, where in (extra.get(SKIPPED_EXAMPLES) or {}).items():
            keep_examples(self.examples, reason, list(where))
