"""What an export holds: kept videos only (unless asked), by category and train/held-out split, shard by shard."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from storage.catalog import query
from storage.layout import DataRoot
from storage.shards import list_markers, read_shard
from tasks.train.pooling import build_pairs
from tasks.train.split import is_heldout
from tasks.youtube.ids import is_video_id


class ExportFilter(BaseModel):
    """Which clips leave the data root. Rejected videos (dropped by a stage, gone in a re-crawl) stay
    in unless `keep="all"`; `categories` are level-1 categories; the split is the training stage's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    keep: Literal["kept", "all"] = "kept"
    categories: tuple[str, ...] = ()
    split: Literal["all", "train", "heldout"] = "all"
    heldout_fraction: float = Field(0.1, ge=0.0, le=1.0)


class NothingToExport(Exception):
    """No clip of the data root passed the filter (or had features, when they are asked for)."""

    def __init__(self, filt: ExportFilter, held: Counter[str], features: str = "none") -> None:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(held.items()) if k != "rows" and v) or "none"
        chosen = (
            f"--keep {filt.keep}, --split {filt.split}, "
            f"--category {' '.join(filt.categories) if filt.categories else 'any'}"
            + (f", --features {features}" if features != "none" else "")
        )
        super().__init__(f"nothing to export: no clips match {chosen} (clips held back: {reasons})")


class UnknownCategory(Exception):
    """A --category that names no category of the data root's clips (a typo exported nothing, exit 0)."""


def require_categories(root: DataRoot, filt: ExportFilter) -> None:
    """UnknownCategory when a --category names no category of the data root's clips."""
    if filt.categories:
        known = {
            r[0] for r in query("SELECT DISTINCT category FROM clips WHERE category IS NOT NULL", root).rows
        }
        unknown = [c for c in filt.categories if c not in known]
        if unknown:
            raise UnknownCategory(
                f"--category {', '.join(repr(c) for c in unknown)}: no clips of {root.url} have it "
                f"(level-1 categories there: {', '.join(sorted(known)) or 'none'})"
            )


@dataclass
class ShardClips:
    """One `clips` shard's selected rows (sorted by video, then idx) and its shard number."""

    shard: int
    clips: pa.Table


class Selection:
    """The videos an export may show, decided once from the catalog, then applied shard by shard."""

    def __init__(self, root: DataRoot, filt: ExportFilter) -> None:
        self.root, self.filt = root, filt
        where = "WHERE keep" if filt.keep == "kept" else ""
        rows = query(f"SELECT video_id FROM video_catalog {where}", root).rows
        # Only plain ids ever leave: an id names files in an export (`features_2d/{id}.npy`, tar members), and a
        # crafted data root's "../../x" wrote outside the export's folder.
        self.videos = {r[0] for r in rows if is_video_id(r[0])}
        self.dropped: Counter[str] = Counter()
        # Videos whose exported features come from random-weight CNNs: the export says so, loudly. Only those
        # the export wrote features of (`exported`): a video read but held back (a model's rows missing, no
        # clip pooled) leaves nothing random.
        self.random_weight_videos: set[str] = set()
        self._random_read: set[str] = set()
        require_categories(root, filt)

    def held_back(self, *more: Counter[str]) -> dict[str, int]:
        """Clips left out, by reason (only reasons that happened)."""
        total = Counter(self.dropped)
        for counts in more:
            total.update(counts)
        return {k: v for k, v in sorted(total.items()) if v}

    def video_ok(self, video_id: str) -> bool:
        if video_id not in self.videos:
            return False
        if self.filt.split == "all":
            return True
        return is_heldout(video_id, self.filt.heldout_fraction) == (self.filt.split == "heldout")

    def clips(self, table: pa.Table) -> pa.Table:
        """The rows of a clips table this export may show; what it held back is counted by reason."""
        ids = table.column("video_id").to_pylist()
        kept = [v in self.videos for v in ids]
        mask = [k and self.video_ok(v) for k, v in zip(kept, ids, strict=True)]
        bad = sum(not is_video_id(v) for v in ids)
        self.dropped["bad_video_id"] += bad
        self.dropped["video_not_kept"] += kept.count(False) - bad
        self.dropped["other_split"] += sum(k and not m for k, m in zip(kept, mask, strict=True))
        if self.filt.categories:
            in_category = pc.fill_null(
                pc.is_in(table.column("category"), pa.array(list(self.filt.categories))), False
            )
            self.dropped["other_category"] += sum(
                m and not c for m, c in zip(mask, in_category.to_pylist(), strict=True)
            )
            mask = [m and c for m, c in zip(mask, in_category.to_pylist(), strict=True)]
        return table.filter(pa.array(mask, pa.bool_()))

    def require_clips(self, features: str = "none") -> None:
        """NothingToExport unless some clip passes the filter: checked before an export writes anything (it
        reads the clips shards up to the first with a selected clip; all of them only when it raises)."""
        counted = Counter(self.dropped)
        try:
            if next(self.shards(), None) is None:
                raise NothingToExport(self.filt, self.dropped, features)
        finally:
            self.dropped = counted  # the export's own pass counts what it holds back

    def shards(self) -> Iterator[ShardClips]:
        """Selected clips of every finished `clips` shard, in shard order."""
        for marker in list_markers(self.root, "clips"):
            table = read_shard(self.root, "clips", marker.shard)
            if table is None:
                continue
            chosen = self.clips(table)
            if chosen.num_rows:
                yield ShardClips(
                    marker.shard, chosen.sort_by([("video_id", "ascending"), ("idx", "ascending")])
                )

    def features(self, shard: int, video_ids: set[str]) -> pa.Table | None:
        """The `frame_features` rows of shard k for these videos (status ok), or None without that shard."""
        table = read_shard(self.root, "frame_features", shard)
        if table is None:
            return None
        keep = pc.and_(
            pc.is_in(table.column("video_id"), pa.array(sorted(video_ids))),
            pc.equal(table.column("status"), "ok"),
        )
        rows = table.filter(keep)
        random = rows.filter(pc.equal(rows.column("random_weights"), True)).column("video_id")
        self._random_read.update(random.unique().to_pylist())
        return rows

    def exported(self, video_ids: Iterable[str]) -> None:
        """Record that the export wrote features of these videos (those read with random weights are counted)."""
        self.random_weight_videos.update(self._random_read.intersection(video_ids))

    def pooled_vectors(self, part: ShardClips, drops: Counter[str]) -> dict[str, np.ndarray] | None:
        """clip_id -> pooled 2D+3D float16 vector for the part's clips that have one (the others counted in
        `drops` by reason), or None when shard k has no features (all its clips counted as `no_features`).

        The vectors are rows of one (clips, 4096) float16 array. As Python lists (`to_pylist`) each value
        was a float object, about 240 KB a clip: 5.4 GB peak RSS to export a shard of 200 videos (22k
        clips), and four fifths of the export's time."""
        table = self.features(part.shard, set(part.clips.column("video_id").to_pylist()))
        if table is None:
            drops["no_features"] += part.clips.num_rows
            return None
        pairs, dropped = build_pairs(part.clips, table)
        drops.update(dropped)
        if pairs.num_rows == 0:
            return {}
        vectors = pairs.column("vector").combine_chunks()  # build_pairs makes one chunk: no copy
        matrix = vectors.flatten().to_numpy(zero_copy_only=False).reshape(len(vectors), -1)
        return dict(zip(pairs.column("clip_id").to_pylist(), matrix, strict=True))


def task_lookup(root: DataRoot) -> dict[str, dict[str, Any]]:
    """task_id -> {source_id, title, category_path} of the row that stands for it (kept rows first)."""
    rows = query(
        "SELECT task_id, source_id, title, category_path FROM tasks "
        "QUALIFY row_number() OVER (PARTITION BY task_id ORDER BY keep DESC, source_id NULLS LAST) = 1",
        root,
    ).as_dicts()
    return {r["task_id"]: r for r in rows}
