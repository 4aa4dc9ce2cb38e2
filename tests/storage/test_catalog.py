"""DuckDB catalog views, read-only guard, stats and the `howto query` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from storage.catalog import QueryError, query, refresh, stats
from storage.layout import DataRoot
from storage.schemas import frame_features as frame_features_schema
from storage.schemas import videos as videos_schema
from storage.shards import write_shard
from tasks.report.card import write_report
from tests.storage.catalog_data import build_root, rows_table
from tests.storage.test_shards import clips_table


@pytest.fixture()
def root(tmp_path: Path) -> DataRoot:
    root = DataRoot.from_any(tmp_path / "data")
    for shard in range(3):
        write_shard(
            root,
            "clips",
            shard,
            clips_table([f"{shard}" * 11] * 2),
            config_hash="h",
            code_version="x",
            rows_in=2,
        )
    refresh(root)
    return root


def test_views_see_all_shards(root: DataRoot) -> None:
    assert query("SELECT count(*), count(DISTINCT video_id) FROM clips", root).rows == [(6, 3)]


def test_view_picks_up_new_shard_after_refresh(root: DataRoot) -> None:
    write_shard(root, "clips", 9, clips_table(["z" * 11]), config_hash="h", code_version="x", rows_in=1)
    refresh(root)
    assert query("SELECT count(*) FROM clips", root).rows == [(7,)]


def test_empty_datasets_have_typed_views(root: DataRoot) -> None:
    result = query("SELECT count(*) FROM videos", root)
    assert result.rows == [(0,)]
    assert "duration_s" in query("SELECT * FROM videos", root).columns


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO clips SELECT * FROM clips",
        "COPY (SELECT 1) TO '/tmp/howto-should-not-exist.csv'",
        "ATTACH '/tmp/howto-other.db' AS other",
        "SELECT 1; DROP VIEW clips",
        "CREATE TABLE t AS SELECT 1",
    ],
)
def test_read_only_guard(root: DataRoot, sql: str) -> None:
    with pytest.raises(QueryError, match="only read-only queries"):
        query(sql, root)
    assert query("SELECT count(*) FROM clips", root).rows == [(6,)]
    assert not Path("/tmp/howto-should-not-exist.csv").exists()


def test_bad_sql_gives_duckdb_message(root: DataRoot) -> None:
    with pytest.raises(QueryError, match="nosuchtable"):
        query("SELECT * FROM nosuchtable", root)


def test_stats_counts(root: DataRoot) -> None:
    summary = stats(root)
    assert summary["clips"]["total"] == 6
    assert summary["clips"]["words"] == 18
    assert summary["top_categories"] == [{"category": "Food and Entertaining", "clips": 6}]


def _rows(schema: pa.Schema, rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist([{**dict.fromkeys(schema.names), **r} for r in rows], schema=schema)


def _feature_row(
    video_id: str, model: str, idx: int, random_weights: bool, status: str = "ok"
) -> dict[str, object]:
    return {
        "video_id": video_id, "model": model, "idx": idx, "t_start_ms": idx * 1000, "t_end_ms": idx * 1000 + 1000,
        "vector": [0.5, 0.5] if status == "ok" else [], "random_weights": random_weights, "status": status,
    }  # fmt: skip


def test_stats_feature_coverage_counts_models_failures_random_weights_and_gaps(root: DataRoot) -> None:
    """Kept videos: 000 (both models, pretrained), 111 (2D only, random weights), 222 (failed) and 333
    (features never run); 444 was dropped by the probe and has no business in the gap count."""
    vids = {k: str(k) * 11 for k in range(5)}
    videos = [
        {"video_id": vids[k], "keep": k != 4, "crawl_id": "crawl-0000", "status": "ok", "duration_s": 60.0}
        for k in range(5)
    ]
    write_shard(
        root, "videos", 0, _rows(videos_schema.SCHEMA, videos), config_hash="h", code_version="x", rows_in=5
    )
    features = [
        *(_feature_row(vids[0], "resnet152", i, False) for i in range(3)),
        *(_feature_row(vids[0], "resnext101", i, False) for i in range(2)),
        *(_feature_row(vids[1], "resnet152", i, True) for i in range(2)),
        _feature_row(vids[2], "resnet152", 0, False, status="error"),
    ]
    table = _rows(frame_features_schema.SCHEMA, features)
    write_shard(root, "frame_features", 0, table, config_hash="h", code_version="x", rows_in=3)
    summary = stats(root)
    assert summary["features"] == {
        "videos_by_model": {"resnet152": 2, "resnext101": 1},
        "videos_failed": 1,
        "videos_random_weights": 1,
        "kept_videos_without_features": 2,  # 222 and 333
        "hours": round(5 / 3600, 3),  # 3 s of 000 and 2 s of 111
    }
    assert summary["clips"]["videos"] == 3
    text = _howto("stats", "--data-root", root.url).stdout
    assert "the features of 1 video(s) come from random weights" in text
    # No line is broken inside a value, whatever the width of the pipe.
    assert "features videos_by_model={resnet152: 2, resnext101: 1}, videos_failed=1," in text
    # The dataset card says the same, and warns about the random weights.
    card = Path(write_report(root, Path(root.url) / "report")["card"]).read_text()
    assert (
        "- Videos with features, by model: resnet152 2, resnext101 1; failed 1; kept videos without features 2;"
        in card
    )
    assert "**WARNING: the features of 1 video(s) come from random weights" in card


def _howto(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "howto"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)


def test_cli_query_formats_and_errors(root: DataRoot) -> None:
    out = _howto(
        "query",
        "SELECT video_id, count(*) AS n FROM clips GROUP BY 1 ORDER BY 1",
        "--data-root",
        root.url,
        "--format",
        "json",
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"video_id": f"{i}" * 11, "n": 2} for i in range(3)]
    csv_out = _howto("query", "SELECT count(*) AS n FROM clips", "--data-root", root.url, "--format", "csv")
    assert csv_out.stdout.splitlines() == ["n", "6"]
    bad = _howto("query", "SELEC nonsense", "--data-root", root.url)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    refused = _howto("query", "DELETE FROM clips", "--data-root", root.url)
    assert refused.returncode == 2 and "read-only" in refused.stderr


def test_cli_stats_json(root: DataRoot) -> None:
    out = _howto("stats", "--json", "--data-root", root.url)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["clips"]["total"] == 6


def test_the_report_counts_videos_with_captions_not_every_probed_video(tmp_path: Path) -> None:
    """The report's caption sources summed the `videos` shards' rows, private and caption-less videos
    included (43 "videos" with 38 caption files on the demo): now the videos whose captions were read."""
    from storage.shards import read_shard
    from tasks.report.numbers import collect

    root = build_root(tmp_path)
    videos = read_shard(root, "videos", 0)
    assert videos is not None
    private = {
        "video_id": "2" * 11,
        "keep": False,
        "status": "ok",
        "crawl_id": "c0",
        "drop_reason": "private",
    }
    grown = pa.concat_tables([videos, rows_table("videos", [private])])
    write_shard(root, "videos", 0, grown, config_hash="h", code_version="x", rows_in=grown.num_rows)
    assert collect(root).caption_sources == {"crawled (.vtt)": 2}


def test_every_query_says_which_damaged_shard_it_leaves_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The warning came only with the query that rebuilt the catalog; later ones (the catalog reused)
    answered from fewer rows without a word."""
    root = build_root(tmp_path)
    shard = Path(root.shard_path("clips", 1, 1))
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    for _ in range(3):
        caplog.clear()
        assert query("SELECT count(*) FROM clips", root).rows == [(4,)]
        said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(said) == 1 and str(shard) in said[0] and "its marker says" in said[0], said


def test_stats_count_kept_videos_of_unknown_length_apart_from_the_hours(tmp_path: Path) -> None:
    """An imported video has no duration (the release lists none): stats said hours_kept=0.0 for kept
    videos as if they were empty. The kept ones of unknown length are now counted beside the hours."""
    root = build_root(tmp_path)  # 000 kept (3600 s), 111 dropped by the words rule
    imported = [
        {"video_id": "5" * 11, "keep": True, "status": "imported", "crawl_id": "howto100m"},
        {"video_id": "6" * 11, "keep": True, "status": "imported", "crawl_id": "howto100m"},
    ]
    write_shard(
        root, "videos", 1, rows_table("videos", imported), config_hash="h", code_version="x", rows_in=2
    )
    videos = stats(root)["videos"]
    assert (videos["kept"], videos["hours_kept"], videos["kept_without_duration"]) == (3, 1.0, 2)
