"""Two `howto import howto100m` of different release files into one data root never share shard numbers.

An import numbers its `videos` shards on from its base as its caption file streams, so the numbers it takes are
known only at its end: while one has not finished (running, or killed and waiting for its rerun), an import of
other files is refused before it writes anything, and the unfinished one resumes and finishes. Two imports
starting at the same moment write their plans and then look for each other's (no lock: the root may be an
object store), so at least one is refused; the interleavings are forced here, on real release files.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import tasks.howto100m.layout as layout
from storage.layout import DataRoot
from storage.shards import list_markers
from tasks.howto100m.import_config import ImportConfig, batch_of
from tasks.howto100m.import_stage import ImportConflict, import_howto100m
from tasks.howto100m.importer import Importer
from tasks.search.plans import ImportInProgress
from tests.tasks.howto100m.conftest import import_config
from tests.tasks.howto100m.release_files import VIDEO_B, VIDEO_C, Release, write_release

# The fixture release: 3 caption entries by 2, then the csv's video without one: 3 videos shards, 1 tasks shard.
FIRST_SHARDS = 3


def _files(root: DataRoot) -> dict[str, bytes]:
    base = Path(root.url)
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def _other_files(folder: Path, without: str) -> ImportConfig:
    """Other release files: the fixture release with one video's captions left out (another batch)."""
    other = write_release(folder)
    captions = json.loads(other.captions.read_text())
    captions.pop(without)
    other.captions.write_text(json.dumps(captions))
    return import_config(other)


def _killed(cfg: ImportConfig, root: DataRoot, monkeypatch: pytest.MonkeyPatch, at: str, **kw: Any) -> None:
    """Run the import and kill it (no handler runs, as for SIGKILL): right after its plan is written
    (`plan`), or after its first videos shard (`shard`)."""
    write_tasks, write_shard = Importer.write_tasks, Importer.write_shard

    def tasks_then_kill(self: Importer) -> None:
        if at == "plan":
            raise KeyboardInterrupt
        write_tasks(self)

    def shard_then_kill(self: Importer, index: int, group: list[Any]) -> None:
        if index == 1:
            raise KeyboardInterrupt
        write_shard(self, index, group)

    with monkeypatch.context() as patch:
        patch.setattr(Importer, "write_tasks", tasks_then_kill)
        patch.setattr(Importer, "write_shard", shard_then_kill)
        with pytest.raises(KeyboardInterrupt):
            import_howto100m(cfg, root.url, **kw)


def _import_plans(root: DataRoot) -> list[str]:
    return sorted(p.name for p in Path(layout.plans_dir(root)).glob("*.json"))


def _batches(root: DataRoot) -> set[Any]:
    return {m.config.get("import_batch") for d in ("tasks", "videos") for m in list_markers(root, d)}


@pytest.mark.parametrize("killed_at", ["plan", "shard"])
def test_other_files_wait_until_an_unfinished_import_has_finished(
    release: Release, fresh_root: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, killed_at: str
) -> None:
    first, second = import_config(release), _other_files(tmp_path / "other", without=VIDEO_C)
    _killed(first, fresh_root, monkeypatch, killed_at)
    before = _files(fresh_root)
    for replace in (False, True):  # --replace does not pass either: the unfinished import is not done yet
        with pytest.raises(ImportInProgress) as refused:
            import_howto100m(second, fresh_root.url, replace=replace)
        line = str(refused.value)
        assert fresh_root.url in line and f"batch {batch_of(first)} of {release.captions}, started " in line
        assert "run it again" in line and "--replace" in line and "\n" not in line
        assert _files(fresh_root) == before  # nothing of its own left behind, nothing of the first touched
    summary = import_howto100m(first, fresh_root.url)  # the first resumes, at its own numbers
    assert summary["first_shard"] == 0 and summary["shards"] == FIRST_SHARDS
    assert summary["shards_cached"] == (1 if killed_at == "shard" else 0)
    # Finished, it blocks nothing: other files need --replace as ever, and number after every shard of it.
    with pytest.raises(ImportConflict, match="--replace"):
        import_howto100m(second, fresh_root.url)
    replaced = import_howto100m(second, fresh_root.url, replace=True)
    assert replaced["first_shard"] == FIRST_SHARDS and replaced["shards"] == 2
    assert [m.shard for m in list_markers(fresh_root, "videos")] == [3, 4]
    assert _batches(fresh_root) == {batch_of(second)}


def test_an_import_of_other_files_waits_for_an_unfinished_replace(
    release: Release, fresh_root: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replace killed before its swap is resumed, not dropped by a third import of yet other files (whose
    base would fall on the staged shards, and which would drop them under a replace still running)."""
    first, second = import_config(release), _other_files(tmp_path / "b", without=VIDEO_C)
    third = _other_files(tmp_path / "c", without=VIDEO_B)
    import_howto100m(first, fresh_root.url)
    _killed(second, fresh_root, monkeypatch, "shard", replace=True)
    before = _files(fresh_root)
    with pytest.raises(ImportInProgress, match=f"batch {batch_of(second)}"):
        import_howto100m(third, fresh_root.url, replace=True)
    assert _files(fresh_root) == before  # the staged shard and its marker are still there
    resumed = import_howto100m(second, fresh_root.url, replace=True)
    assert resumed["shards_cached"] == 1 and resumed["first_shard"] == FIRST_SHARDS
    assert _batches(fresh_root) == {batch_of(second)}
    assert import_howto100m(third, fresh_root.url, replace=True)["first_shard"] == FIRST_SHARDS + 2


def test_an_import_of_other_files_started_while_a_replace_runs_is_refused(
    release: Release, fresh_root: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = import_config(release), _other_files(tmp_path / "b", without=VIDEO_C)
    third = _other_files(tmp_path / "c", without=VIDEO_B)
    import_howto100m(first, fresh_root.url)
    write_shard = Importer.write_shard
    meanwhile: list[BaseException] = []
    started: list[bool] = []

    def third_starts_between_shards(self: Importer, index: int, group: list[Any]) -> None:
        if index == 1 and not started:
            started.append(True)
            with pytest.raises(ImportInProgress) as refused:
                import_howto100m(third, fresh_root.url, replace=True)
            meanwhile.append(refused.value)
        write_shard(self, index, group)

    monkeypatch.setattr(Importer, "write_shard", third_starts_between_shards)
    summary = import_howto100m(second, fresh_root.url, replace=True)
    assert meanwhile and f"batch {batch_of(second)}" in str(meanwhile[0])
    assert summary["shards"] == 2 and summary["shards_cached"] == 0
    assert [m.shard for m in list_markers(fresh_root, "videos")] == [3, 4]
    assert _batches(fresh_root) == {batch_of(second)}
    assert _import_plans(fresh_root) == [f"{batch_of(second)}.json"]


def _around_first_plan_write(
    monkeypatch: pytest.MonkeyPatch, batch: str, before: Callable[[], None] = lambda: None,
    after: Callable[[], None] = lambda: None,
) -> None:  # fmt: skip
    """Run `before` and `after` around the first plan write of `batch` (after its first look at the root)."""
    save = layout.save_plan
    done: list[bool] = []

    def save_plan(root: DataRoot, plan: dict[str, Any]) -> None:
        if plan["batch"] != batch or done:
            save(root, plan)
            return
        done.append(True)
        before()
        save(root, plan)
        after()

    monkeypatch.setattr(layout, "save_plan", save_plan)


def test_an_import_that_started_and_finished_while_another_fixed_its_plan_is_seen(
    release: Release, fresh_root: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both found the root empty; the second ran to its end before the first wrote its plan: the first, looking
    after its write, finds an import of other files in the root and is refused as any such import is."""
    first, second = import_config(release), _other_files(tmp_path / "other", without=VIDEO_C)
    ran: list[dict[str, Any]] = []
    _around_first_plan_write(
        monkeypatch, batch_of(first), before=lambda: ran.append(import_howto100m(second, fresh_root.url))
    )
    with pytest.raises(ImportConflict, match="--replace"):
        import_howto100m(first, fresh_root.url)
    assert ran[0]["first_shard"] == 0 and ran[0]["shards"] == 2
    assert _batches(fresh_root) == {batch_of(second)}  # nothing of the refused one, not even its plan
    assert _import_plans(fresh_root) == [f"{batch_of(second)}.json"]


@pytest.mark.parametrize("order", ["other-started-before-this-wrote", "other-started-after-this-wrote"])
def test_of_two_imports_starting_at_once_one_is_refused(
    release: Release, fresh_root: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, order: str
) -> None:
    """The other import starts while this one fixes its plan: before this one writes it (the other then runs
    until a kill, unfinished), or after (the other then looks after its own write and finds this one's)."""
    this, other = import_config(release), _other_files(tmp_path / "other", without=VIDEO_C)
    refused: list[BaseException] = []

    def other_starts() -> None:
        if order == "other-started-before-this-wrote":
            _killed(other, fresh_root, monkeypatch, "shard")
        else:
            with pytest.raises(ImportInProgress) as caught:
                import_howto100m(other, fresh_root.url)
            refused.append(caught.value)

    if order == "other-started-before-this-wrote":
        _around_first_plan_write(monkeypatch, batch_of(this), before=other_starts)
        with pytest.raises(ImportInProgress, match=f"batch {batch_of(other)}"):
            import_howto100m(this, fresh_root.url)
        assert _batches(fresh_root) == {batch_of(other)}
        assert _import_plans(fresh_root) == [f"{batch_of(other)}.json"]  # this one's plan was taken back
        monkeypatch.undo()
        assert import_howto100m(other, fresh_root.url)["shards_cached"] == 1  # the other resumes
    else:
        _around_first_plan_write(monkeypatch, batch_of(this), after=other_starts)
        summary = import_howto100m(this, fresh_root.url)
        assert refused and f"batch {batch_of(this)}" in str(refused[0])
        assert summary["shards"] == FIRST_SHARDS and summary["shards_cached"] == 0
        assert _batches(fresh_root) == {batch_of(this)}
        assert _import_plans(fresh_root) == [f"{batch_of(this)}.json"]


def test_two_imports_that_wrote_their_plans_before_either_looked_are_both_refused(
    release: Release, fresh_root: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The narrow window: each wrote its plan, and each looks before the other has taken its plan back. Both
    are refused, never both let through; a rerun of either then goes ahead."""
    configs = {"a": import_config(release), "b": _other_files(tmp_path / "other", without=VIDEO_C)}
    # Both imports take every step of the same sequence together: each look before writing (there may be
    # several: before any file is read, and in load_plan) ends with both having looked, so neither writes its
    # plan before the other's last look; after writing, both plans are there before either looks, and
    # neither takes its plan back before the other has looked. Events set once per import held only for the
    # first look: a slow thread's second look then saw the other's plan, and the test hung on a wait.
    together = threading.Barrier(len(configs), timeout=30)
    look = getattr(layout, "unfinished_import_of_other_files", None)

    def in_step(root: DataRoot, batch: str) -> dict[str, Any] | None:
        assert look is not None
        if not layout.plan_exists(root, batch):  # a look before writing: both find the root empty
            found = look(root, batch)
            together.wait()
            return found
        together.wait()  # the look after writing: both plans are there
        found = look(root, batch)
        together.wait()
        return found

    # raising=False: without the look (the code before this test), both imports simply run
    monkeypatch.setattr(layout, "unfinished_import_of_other_files", in_step, raising=False)
    outcomes: dict[str, BaseException | dict[str, Any]] = {}

    def run(name: str) -> None:
        try:
            outcomes[name] = import_howto100m(configs[name], fresh_root.url)
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test checks
            outcomes[name] = exc

    threads = [threading.Thread(target=run, args=(name,)) for name in configs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(isinstance(outcomes[name], ImportInProgress) for name in configs), outcomes
    assert _import_plans(fresh_root) == [] and _batches(fresh_root) == set()  # both left nothing behind
    monkeypatch.undo()
    assert import_howto100m(configs["b"], fresh_root.url)["shards"] == 2  # a rerun goes ahead


@pytest.mark.parametrize("unfinished", ["import", "replace"])
def test_an_unfinished_import_dropped_as_the_refusal_says_gives_way(
    release: Release, fresh_root: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unfinished: str
) -> None:
    """The refusal's way out for an import that will never run again (its files lost): delete its plan. Its
    shards then go at the next import's swap; a killed replace's staged files before that import writes."""
    first, second = import_config(release), _other_files(tmp_path / "b", without=VIDEO_C)
    third = _other_files(tmp_path / "c", without=VIDEO_B)
    if unfinished == "replace":
        import_howto100m(first, fresh_root.url)
        _killed(second, fresh_root, monkeypatch, "shard", replace=True)
        dropped, last = second, third
    else:
        _killed(first, fresh_root, monkeypatch, "shard")
        dropped, last = first, second
    with pytest.raises(ImportInProgress) as refused:
        import_howto100m(last, fresh_root.url, replace=True)
    plan = str(refused.value).rsplit("delete ", 1)[1].removesuffix(" first)")
    assert plan == f"{layout.plans_dir(fresh_root)}/{batch_of(dropped)}.json"
    Path(plan).unlink()
    summary = import_howto100m(last, fresh_root.url, replace=True)
    assert summary["replaced_shards"] > 0
    assert _batches(fresh_root) == {batch_of(last)}
    assert _import_plans(fresh_root) == [f"{batch_of(last)}.json"]
    assert not list(Path(fresh_root.url).rglob("*.staged"))
    assert {p.name for p in Path(fresh_root.url).rglob("part-*.parquet") if "/videos/" in str(p)} == {
        f"part-{shard:05d}.parquet" for shard in range(summary["first_shard"], summary["first_shard"] + 2)
    }
