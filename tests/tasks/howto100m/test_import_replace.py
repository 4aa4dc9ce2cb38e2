"""`howto import howto100m --replace` on the real release excerpts: the earlier import stays, byte for byte and
in every query, until the new one has finished; a replace that breaks part way, or is killed, costs nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import storage.atomic as atomic
from storage.catalog import query
from storage.layout import DataRoot
from storage.shard_lock import LOCKS_DIR
from tasks.howto100m.caption_json import CaptionFileError
from tasks.howto100m.import_config import ImportConfig
from tasks.howto100m.import_stage import import_howto100m
from tasks.search.plans import ImportInProgress, append_video_plans, next_video_shard
from tests.tasks.howto100m.release_files import kill_after_the_first_shard

FIXTURES = Path(__file__).parents[2] / "fixtures"
CSV = FIXTURES / "howto100m" / "HowTo100M_v1_excerpt.csv"  # 7 videos, none with a caption entry below
CAPTIONS = FIXTURES / "howto100m" / "caption_excerpt.json"  # 5 videos, 4 + 2 + 1 + 2 + 1 lines
TASK_IDS = FIXTURES / "wikihow" / "task_ids_head.csv"  # 164 tasks
SUMMARY_SQL = (
    "SELECT (SELECT count(*) FROM videos), (SELECT count(*) FROM clips), "
    "(SELECT count(*) FILTER (WHERE keep) FROM tasks), (SELECT count(*) FROM tasks)"
)


def _config(captions: Path) -> ImportConfig:
    return ImportConfig(csv=str(CSV), task_ids=str(TASK_IDS), captions=str(captions), videos_per_shard=2)


def _files(root: DataRoot) -> dict[str, bytes]:
    base = Path(root.url)
    # The shard locks (storage/shard_lock.py, empty files a run opens) are bookkeeping, not data: left out.
    return {
        str(p.relative_to(base)): p.read_bytes()
        for p in sorted(base.rglob("*"))
        if p.is_file() and p.relative_to(base).parts[0] != LOCKS_DIR
    }


def _answers(root: DataRoot) -> tuple[tuple, list[tuple]]:
    """What a user's queries see: the row counts, and each video's clips."""
    counts = query(SUMMARY_SQL, root).rows[0]
    per_video = query("SELECT video_id, count(*) FROM clips GROUP BY 1 ORDER BY 1", root).rows
    return counts, per_video


def _cut_after(tmp_path: Path, entries: int) -> Path:
    """The real caption excerpt, broken right after its first `entries` videos (found only while streaming)."""
    text = CAPTIONS.read_text()
    end = 0
    for _ in range(entries):
        end = text.index("]}", end) + 2
    cut = tmp_path / "caption.json"
    cut.write_text(text[:end] + ', "x": ')
    return cut


def _without_last_video(tmp_path: Path) -> Path:
    """Other caption files, whole: the excerpt without its last video (4 videos, 9 lines)."""
    text = CAPTIONS.read_text()
    shorter = tmp_path / "fewer" / "caption.json"
    shorter.parent.mkdir()
    shorter.write_text(text[: text.rindex(', "T6inDvsbLw4"')] + "}")
    return shorter


@pytest.fixture()
def old_import(fresh_root: DataRoot) -> Iterator[DataRoot]:
    import_howto100m(_config(CAPTIONS), fresh_root.url)
    # 5 caption entries (outside the csv, still imported) + the csv's 7 videos; 10 lines; 164 tasks kept
    assert _answers(fresh_root)[0] == (12, 10, 164, 164)
    yield fresh_root


@pytest.fixture()
def shards_written(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Temp paths of the files the atomic writer renamed into place (its test hook)."""
    written: list[str] = []
    monkeypatch.setattr(atomic, "before_rename_hook", written.append)
    return written


def test_a_replace_broken_part_way_keeps_the_earlier_import(
    old_import: DataRoot, tmp_path: Path, shards_written: list[str]
) -> None:
    before_answers = _answers(old_import)
    before = _files(old_import)  # after the queries: the catalog is built, and must not change either
    cut = _cut_after(tmp_path, 3)
    with pytest.raises(CaptionFileError, match="character"):
        import_howto100m(_config(cut), old_import.url, replace=True)
    # It broke while streaming, after a shard of its own was written (its first 2 videos) ...
    assert [p for p in shards_written if "/videos/" in p and p.endswith(".parquet")]
    # ... and the earlier import is there as it was: every file, every answer, nothing staged left behind.
    assert _files(old_import) == before
    assert _answers(old_import) == before_answers


def test_a_good_replace_swaps_in_the_new_import_only_once_it_is_done(
    old_import: DataRoot, tmp_path: Path
) -> None:
    new = _config(_without_last_video(tmp_path))
    summary = import_howto100m(new, old_import.url, replace=True)
    assert summary["replaced_shards"] > 0 and summary["videos"] == 11
    # The new import alone: 4 + 7 videos, 9 lines, and its tasks kept (not duplicates of the replaced ones).
    counts, per_video = _answers(old_import)
    assert counts == (11, 9, 164, 164)
    assert "T6inDvsbLw4" not in dict(per_video)
    assert not list(Path(old_import.url).rglob("*.staged"))  # the markers were moved in
    again = import_howto100m(new, old_import.url)  # published like any import: a rerun writes nothing
    assert again["shards_cached"] == again["shards"] == summary["shards"]


def test_a_killed_replace_keeps_the_earlier_import_and_resumes(
    old_import: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before_answers = _answers(old_import)
    new = _config(_without_last_video(tmp_path))
    with monkeypatch.context() as patch:
        kill_after_the_first_shard(patch)
        with pytest.raises(KeyboardInterrupt):
            import_howto100m(new, old_import.url, replace=True)
    assert _answers(old_import) == before_answers  # the staged shard is invisible to every query
    # A crawl meanwhile (a scheduled re-crawl, say) would number its new videos shard after the markers,
    # where the import goes on writing: it is refused until the import has finished.
    video = [{"video_id": "crawled0001"}]
    with pytest.raises(ImportInProgress, match="has not finished"):
        append_video_plans(old_import, video, "crawl-x", "search", 2, next_video_shard(old_import))
    summary = import_howto100m(new, old_import.url, replace=True)
    assert summary["shards_cached"] == 1 and summary["shards"] == 6  # 4 caption videos + the csv's 7, by 2
    assert _answers(old_import)[0] == (11, 9, 164, 164)
    (plan,) = append_video_plans(old_import, video, "crawl-x", "search", 2, next_video_shard(old_import))
    assert plan["shard"] == summary["first_shard"] + summary["shards"]  # after every shard of the import
