"""Plans: which tasks each search shard holds and which videos each `videos` shard probes.

A plan is written before its shard's work and never changes afterwards, so a killed run resumes
with the same shard contents and a re-crawl appends shards after the existing ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from storage.atomic import atomic_write_bytes, is_temp_name
from storage.layout import DataRoot
from tasks.search.info_store import INFO_DIR

PLANS_DIR = "_plans"
RECHECK = "recheck"  # plan source: known videos probed again (gone? captions changed?)
# `howto import howto100m`'s plans (tasks/howto100m/layout.py): a plan without `n_video_shards` is an import
# still at work, or killed and waiting for its rerun.
IMPORT_PLANS = "howto100m"


class ImportInProgress(RuntimeError):
    """A HowTo100M import into the data root has not finished. Its `videos` shards are numbered on from its
    base as its caption file streams, so how many it takes is known only at its end: a crawl, or an import of
    other files, numbering new shards meanwhile could take one of them (a replacing import's have no marker
    until its swap)."""


def _read_json(root: DataRoot, rel: str) -> Any:
    path = root.path(rel)
    if not root.exists(path):
        return None
    with root.open(path, "rb") as handle:
        return json.loads(handle.read().decode())


def _write_json(root: DataRoot, rel: str, data: Any) -> None:
    atomic_write_bytes(root, root.path(rel), json.dumps(data, sort_keys=True, indent=1).encode())


def crawl_search_base(root: DataRoot, crawl_id: str, existing_shards: Iterable[int]) -> int:
    """The first `search_results` shard number of a crawl, fixed the first time the crawl starts."""
    rel = f"{PLANS_DIR}/search_results/{crawl_id}.json"
    plan = _read_json(root, rel)
    if plan is not None:
        return int(plan["base_shard"])
    used = set(existing_shards)
    for other in _list(root, "search_results"):
        data = _read_json(root, f"{PLANS_DIR}/search_results/{other}")
        used.update(range(int(data["base_shard"]), int(data["base_shard"]) + int(data.get("n_shards", 0))))
    base = max(used) + 1 if used else 0
    save_search_plan(root, crawl_id, base, 0)
    return base


def save_search_plan(root: DataRoot, crawl_id: str, base: int, n_shards: int) -> None:
    _write_json(
        root,
        f"{PLANS_DIR}/search_results/{crawl_id}.json",
        {"crawl_id": crawl_id, "base_shard": base, "n_shards": n_shards},
    )


def _list(root: DataRoot, kind: str) -> list[str]:
    directory = root.path(PLANS_DIR, kind)
    if not root.exists(directory):
        return []
    return sorted(p.rsplit("/", 1)[1] for p in root.fs.glob(f"{directory}/*.json") if not is_temp_name(p))


def video_plans(root: DataRoot) -> dict[int, dict[str, Any]]:
    """Every `videos` shard plan, by shard number."""
    plans = {}
    for name in _list(root, "videos"):
        data = _read_json(root, f"{PLANS_DIR}/videos/{name}")
        plans[int(data["shard"])] = data
    return plans


def _video_plan_rel(shard: int) -> str:
    return f"{PLANS_DIR}/videos/part-{shard:05d}.json"


def load_video_plan(root: DataRoot, shard: int) -> dict[str, Any]:
    """The plan of one `videos` shard; a missing plan is a whole-shard failure."""
    plan = _read_json(root, _video_plan_rel(shard))
    if plan is None:
        raise FileNotFoundError(f"no plan for videos shard {shard} under {root.path(PLANS_DIR)}")
    return dict(plan)


def save_video_plan(
    root: DataRoot, shard: int, crawl_id: str, source: str, videos: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Record the videos of a new `videos` shard (id, task, rank, url, title), before probing them."""
    plan = {
        "shard": shard,
        "crawl_id": crawl_id,
        "source": source,
        "created_at": time.time(),
        "videos": list(videos),
    }
    _write_json(root, _video_plan_rel(shard), plan)
    return plan


def append_video_plans(
    root: DataRoot,
    candidates: Sequence[dict[str, Any]],
    crawl_id: str,
    source: str,
    per_shard: int,
    next_shard: int,
) -> list[dict[str, Any]]:
    """Chunk new candidates (already de-duplicated and ordered) into plans numbered from `next_shard`.

    An import fixing its base at the same moment is found by one side or the other, with no lock (which an
    object store has not): the crawl writes its plans and then looks for an unfinished import; the import
    writes its plan and then looks for video plans in its range (tasks/howto100m/layout.py). If both looked
    before the other wrote, each look came before the other's write and after its own: impossible. So one
    of them sees the other. The crawl that sees an import removes its plans and is refused; the import
    that sees a crawl's plans moves its base past them.
    """
    if not candidates:
        return []
    check_no_import_in_progress(root)  # the common case, refused before anything is written
    plans: list[dict[str, Any]] = []
    for i in range(0, len(candidates), per_shard):
        plans.append(
            save_video_plan(root, next_shard + len(plans), crawl_id, source, candidates[i : i + per_shard])
        )
    try:
        check_no_import_in_progress(root)
    except ImportInProgress:
        for plan in plans:  # nothing was probed yet: the numbers go back, for the import to use
            root.fs.rm(root.path(_video_plan_rel(int(plan["shard"]))))
        raise
    return plans


def unfinished_imports(root: DataRoot) -> list[dict[str, Any]]:
    """The plans of the imports into `root` that have not finished (running, or stopped and waiting for their
    rerun), oldest first. A plan removed while it is read (an import refused at its start takes its plan
    back) is skipped."""
    found = []
    for name in _list(root, IMPORT_PLANS):
        try:
            plan = _read_json(root, f"{PLANS_DIR}/{IMPORT_PLANS}/{name}")
        except FileNotFoundError:
            continue
        if isinstance(plan, dict) and "n_video_shards" not in plan:
            found.append(plan)
    return sorted(found, key=lambda plan: float(plan.get("created_at") or 0))


def describe_import(plan: dict[str, Any]) -> str:
    """An import as its refusals name it: its batch, its caption file where the plan has it, when it started."""
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime(float(plan.get("created_at") or 0)))
    captions = f" of {plan['captions']}" if plan.get("captions") else ""
    return f"batch {plan.get('batch')}{captions}, started {started} UTC"


def check_no_import_in_progress(root: DataRoot) -> None:
    """Raise ImportInProgress when an import into `root` has not finished (see the class)."""
    for plan in unfinished_imports(root):
        raise ImportInProgress(
            f"{root.url}: a HowTo100M import ({describe_import(plan)}) has not finished, and the videos shard "
            "numbers it will take are not known until it has: run the same `howto import howto100m` again to "
            "finish it (it resumes), then crawl"
        )


def planned_video_ids(root: DataRoot) -> set[str]:
    """Every video a crawl's plans name (probed, or about to be)."""
    return {str(v["video_id"]) for plan in video_plans(root).values() for v in plan["videos"]}


def seen_video_ids(root: DataRoot) -> set[str]:
    """Every video already planned (so probed, or about to be) by any earlier run or crawl."""
    from storage.shards import read_dataset

    seen = planned_video_ids(root)
    table = read_dataset(root, "videos").to_table(columns=["video_id"])
    seen.update(v for v in table.column("video_id").to_pylist() if v)
    return seen


def plan_new_videos(
    root: DataRoot, crawl_id: str, search_shards: Iterable[int], per_shard: int
) -> list[dict[str, Any]]:
    """Phase B: de-duplicate this crawl's hits, drop videos seen before, append plans for the rest."""
    from storage.shards import read_shard
    from tasks.search.assign import best_hits, new_candidates

    rows: list[dict[str, Any]] = []
    for shard in search_shards:
        table = read_shard(root, "search_results", shard)
        if table is not None:
            rows.extend(
                table.select(["task_id", "rank", "video_id", "url", "title", "keep", "status"]).to_pylist()
            )
    candidates = new_candidates(best_hits(rows), seen_video_ids(root))
    return append_video_plans(root, candidates, crawl_id, "search", per_shard, next_video_shard(root))


def next_video_shard(root: DataRoot) -> int:
    """The number after every planned or written `videos` shard: new shards never overwrite old ones."""
    from storage.shards import list_markers

    used = set(video_plans(root))
    used.update(m.shard for m in list_markers(root, "videos"))
    return max(used) + 1 if used else 0


# A plan's temp file older than this is a dead writer's: writing a plan takes milliseconds.
STALE_TEMP_S = 15 * 60


def remove_leftovers(root: DataRoot) -> int:
    """Delete the temp files of plans and info files a killed run left, once they are over STALE_TEMP_S old.

    No lock covers these folders, and two crawls may run side by side (only their planning takes turns),
    or a captions run re-probe into info/: a search run starting meanwhile removed the other run's live
    temp file, so its rename failed. The shards' own temp files are removed shard by shard under each
    shard's lock (tasks/shard_runner.py), and a probe's killed info writes by the rerun of its shard
    (probe.py); this sweep catches the rest (a captions run's re-probe killed, a plan's write)."""
    from storage.atomic import remove_stale_temp_files

    removed = 0
    for directory in (
        root.path(PLANS_DIR, "search_results"),
        root.path(PLANS_DIR, "videos"),
        root.path(INFO_DIR),
    ):
        removed += len(remove_stale_temp_files(root, directory, STALE_TEMP_S))
    return removed


def last_checked(plans: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Per video, the newest crawl whose plan probed it (its first probe or a re-check)."""
    latest: dict[str, str] = {}
    for plan in plans:
        for v in plan["videos"]:
            latest[v["video_id"]] = max(latest.get(v["video_id"], plan["crawl_id"]), plan["crawl_id"])
    return latest


def caption_recheck_picks(
    known: Iterable[str], checked: dict[str, str], exclude: set[str], budget: int
) -> list[str]:
    """Up to `budget` known videos to probe again for their captions, the longest unchecked first.

    Oldest-checked first (ties by id) means a fixed budget per crawl walks through every kept video
    over successive crawls instead of probing the same ones again.
    """
    candidates = sorted((checked.get(v, ""), v) for v in known if v not in exclude)
    return [v for _, v in candidates[: max(0, budget)]]


def plan_rechecks(
    root: DataRoot,
    crawl_id: str,
    search_shards: Iterable[int],
    per_shard: int,
    missing: bool = True,
    captions: int = 0,
) -> list[dict[str, Any]]:
    """Re-crawl: plan a new probe of kept videos from earlier crawls: with `missing`, those this crawl's
    search no longer found, and those gone (`gone_before`) that it found again; with `captions` > 0, that
    many more (oldest-checked first) to compare their caption tracks with what their `videos` row says.

    Their shards hold rows only for videos now gone (`unavailable_since` = this crawl), so no old shard
    file is rewritten; a video still there leaves no row (its caption state goes to the shard's
    marker, `captions_seen`; the generation's change record says a gone video is back). Planned once per
    crawl.
    """
    from storage.shards import read_dataset, read_shard
    from tasks.search.crawl_diff import gone_before
    from tasks.search.crawl_record import returned_rows

    found: set[str] = set()
    # Tasks whose search failed (a row with no hit: a timeout, an error, a refused query) did not find their
    # videos missing: every kept video of such a task was probed as lost (a search outage, the collection).
    unsearched: set[str] = set()
    for shard in search_shards:
        table = read_shard(root, "search_results", shard)
        if table is not None:
            ids, tasks = table.column("video_id").to_pylist(), table.column("task_id").to_pylist()
            ranks, statuses = table.column("rank").to_pylist(), table.column("status").to_pylist()
            found.update(v for v in ids if v)
            # A hit with an id that is no video id is a failed row too, but has its rank: the search ran.
            unsearched.update(
                t
                for v, t, r, s in zip(ids, tasks, ranks, statuses, strict=True)
                if not v and r is None and s != "ok"
            )
    plans = list(video_plans(root).values())
    done = {
        v["video_id"]
        for p in plans
        if p.get("source") == RECHECK and p["crawl_id"] == crawl_id
        for v in p["videos"]
    }
    columns = [
        "video_id",
        "task_id",
        "rank",
        "url",
        "title",
        "keep",
        "status",
        "crawl_id",
        "unavailable_since",
    ]
    rows = read_dataset(root, "videos").to_table(columns=columns).to_pylist()
    gone = gone_before(crawl_id, rows, returned_rows(root))
    known = {}
    for row in rows:
        # Earlier crawls' videos only: a rerun of an older crawl's search (`howto pipeline` again, crawl-0000,
        # after re-crawls) re-checked later crawls' videos and marked one gone `unavailable_since` that crawl.
        if row["keep"] and row["status"] == "ok" and row["crawl_id"] < crawl_id:
            known[row["video_id"]] = {k: row[k] for k in ("video_id", "task_id", "rank", "url", "title")}
    searched = {v for v, row in known.items() if row["task_id"] not in unsearched}
    lost = sorted(searched - found - done - gone.keys()) if missing else []
    # A private video made public again: before, one found gone stayed `unavailable` for good.
    back = sorted(set(known) & found & gone.keys() - done) if missing else []
    # A resumed crawl already planned its picks (they are in `done`): picking again would pick others.
    budget = captions if not done else 0
    picks = caption_recheck_picks(known, last_checked(plans), set(lost) | done | gone.keys(), budget)
    # `gone_since` tells the probe that a video still gone is no news: no second `unavailable_since` row.
    chosen = [
        {**known[v], **({"gone_since": gone[v]} if v in gone else {})}
        for v in sorted(set(lost) | set(picks) | set(back))
    ]
    return append_video_plans(root, chosen, crawl_id, RECHECK, per_shard, next_video_shard(root))
