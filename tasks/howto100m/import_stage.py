"""`howto import howto100m`: the published release into tasks, videos, captions, clips and frame_features.

Offline and streaming: caption.json is read one video at a time and cut into shards of
`videos_per_shard` videos in file order; each shard is one `ShardJob` whose `videos` marker (written
last) proves its captions, clips and frame_features shards too. The release's videos that the caption
file never mentions follow in shards of their own. A rerun skips every finished shard.
"""

from __future__ import annotations

import logging
from typing import Any

from storage.catalog import refresh
from storage.layout import DataRoot
from storage.shards import list_markers
from tasks.howto100m.caption_json import CaptionFileError, iter_entries, open_captions
from tasks.howto100m.import_config import ImportConfig, batch_of
from tasks.howto100m.importer import Importer
from tasks.howto100m.layout import (
    check_can_start,
    imported_batches,
    is_imported,
    remove_batch,
    remove_batch_shards_from,
    remove_imports,
    remove_plan,
    save_plan,
)
from tasks.howto100m.release import ReleaseFormatError
from tasks.howto100m.staging import discard, publish, staged_batches
from tasks.progress import advance
from tasks.tasks.task_lists import ImportFormatError

log = logging.getLogger(__name__)


class ImportConflict(RuntimeError):
    """The data root already holds an import of other release files."""


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
    batches = set(imported_batches(root))
    batches |= {str(m.config.get("import_batch")) for m in list_markers(root, "tasks") if is_imported(m)}
    return batches


def _check_no_other_import(root: DataRoot, batch: str, others: list[str] | None = None) -> None:
    """ImportConflict when the root holds an import of other files (`others`: those batches, if known)."""
    if others is None:
        others = sorted(b for b in _batches_with_rows(root) if b != batch)
    if others:
        raise ImportConflict(
            f"{root.url} already holds a HowTo100M import of other files (batch {others[0]}); "
            "pass --replace to replace it"
        )


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
    # The common refusals, before anything is written: an import of other files not finished, or one there.
    check_can_start(root, batch)
    if not replace:
        _check_no_other_import(root, batch)
    # The plan is this import's claim on its shard numbers, refused while an import of other files has not
    # finished (layout.load_plan). Only then is the root's import looked at for good: one that ran to its
    # end between the check above and this plan's write is seen here, its rows written before its plan
    # said finished.
    first_run = importer.claim()
    try:
        others = sorted(b for b in _batches_with_rows(root) if b != batch)
        if not replace:
            _check_no_other_import(root, batch, others)
    except ImportConflict:
        if first_run:
            remove_plan(root, batch)
        raise
    # A replace of yet other files that stopped before its swap, and whose plan was deleted to drop it (while
    # its plan is there, it is unfinished and this import was refused above), is superseded by this one: its
    # staged files go before any of this import's are written (its shard numbers were never in a marker).
    for stale in sorted(staged_batches(root) - {batch}):
        discard(root, stale)
    staged = bool(others)
    if not staged:
        publish(root, batch)  # a swap cut short by a kill (the import it replaced already gone): finish it
    importer.start(staged=staged)
    n_shards = _write_all(importer)
    removed = past_last = 0
    if not staged:
        # Shards past this run's last, left by an earlier run of the same files that made more (one that kept
        # videos a crawl holds): they would hold those videos twice. A staged run's earlier runs made as many.
        past_last = remove_batch_shards_from(root, batch, importer.plan["videos_base"] + n_shards)
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
        "stale_shards_removed": past_last,
        "counts": counts,
        # where the skipped lines are: "<video id>[i]" is item i (from 0) of its lists in the caption file
        "skipped_examples": {"file": cfg.captions, **dict(sorted(importer.examples.items()))}
        if importer.examples
        else {},
    }
