"""An s3:// data root on a real S3-compatible server (moto's standalone server, started on loopback): the
demo pipeline through captions writes its shards and markers there, and DuckDB queries them."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pytest
import s3fs

from flows.demo import demo_pipeline_config
from flows.pipeline import pipeline
from storage.catalog import query
from storage.layout import DataRoot
from storage.shards import read_dataset, read_shard, scan_filesystem
from tests.moto_s3 import moto_s3

BUCKET = "howto-test"


@pytest.fixture()
def s3_server(tmp_path: Path) -> Iterator[str]:
    """moto_server on 127.0.0.1 with throwaway credentials; s3fs (and botocore) find it by AWS_ENDPOINT_URL."""
    with moto_s3(tmp_path / "moto.log", BUCKET) as endpoint:
        yield endpoint


@pytest.mark.slow
def test_demo_pipeline_through_captions_on_s3(s3_server: str, site, tmp_path: Path, monkeypatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # a URL mistaken for a local path would show up here as an `s3:` folder
    cfg = demo_pipeline_config(site.url)
    cfg = cfg.model_copy(
        update={
            "tasks": cfg.tasks.model_copy(update={"max_articles": 4}),
            "search": cfg.search.model_copy(update={"max_results": 5}),
        }
    )
    url = f"s3://{BUCKET}/howto"
    summaries = pipeline(cfg=cfg, data_root=url, stages=["tasks", "search", "captions"])

    # Every dataset's shard and its marker (written last, the proof the shard is done) are on the store.
    written = s3fs.S3FileSystem().find(f"{BUCKET}/howto")
    for dataset in ("tasks", "search_results", "videos", "captions", "clips"):
        assert any(f"/{dataset}/v" in f and f.endswith("/part-00000.parquet") for f in written), dataset
        assert any(f"/{dataset}/v" in f and f.endswith("/_markers/part-00000.json") for f in written), dataset
    assert list(cwd.iterdir()) == []
    # DuckDB reads the object store through the same filesystem (no extension download, same endpoint).
    root = DataRoot.from_any(url)
    kept = query("SELECT count(*) FROM video_catalog WHERE keep", root.url).rows[0][0]
    clips, videos = query("SELECT count(*), count(DISTINCT video_id) FROM clips", root.url).rows[0]
    assert kept > 0 and videos == kept
    assert clips == summaries["captions"]["clips"] > 0
    # Lazy scans read through Arrow's own S3 client (no Python file objects to free at exit), to the same rows;
    # with s3fs configured in fsspec's own config, which Arrow cannot read, they stay on s3fs.
    scanned = read_dataset(root, "videos")
    assert isinstance(scanned, pads.FileSystemDataset) and isinstance(scanned.filesystem, pafs.S3FileSystem)
    whole = read_shard(root, "videos", 0)
    assert whole is not None and scanned.to_table().sort_by("video_id").equals(whole.sort_by("video_id"))
    monkeypatch.setitem(fsspec.config.conf, "s3", {"anon": False})
    assert isinstance(scan_filesystem(root), s3fs.S3FileSystem)
    assert read_dataset(root, "videos").to_table().num_rows == whole.num_rows
    monkeypatch.delitem(fsspec.config.conf, "s3")
    # A second run finds every shard's marker on the object store and does no work.
    again = pipeline(cfg=cfg, data_root=url, stages=["captions"])
    assert again["captions"]["shards_cached"] == again["captions"]["shards"] > 0


def _list_requests(log: Path) -> int:
    """Object listings (ListObjectsV2) moto_server has answered so far, from its request log."""
    return log.read_text(errors="replace").count("list-type=2")


def _write_clips(url: str, shard: int, video: str) -> None:
    """A clips shard written by another process: its own s3fs, whose writes this process never saw."""
    code = (
        "import sys; from storage.layout import DataRoot; from storage.shards import write_shard; "
        "from tests.storage.test_shards import clips_table; "
        "write_shard(DataRoot.from_any(sys.argv[1]), 'clips', int(sys.argv[2]), clips_table([sys.argv[3]] * 3), "
        "config_hash='h', code_version='x', rows_in=3)"
    )
    root_dir = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code, url, str(shard), video], cwd=root_dir, check=True)


def test_queries_see_shards_other_processes_wrote_with_one_listing_per_dataset(
    s3_server: str, tmp_path: Path
) -> None:
    """A long-lived process (a worker, a notebook) queries an s3:// root that other processes write to: each
    query lists the store afresh (s3fs answers a repeated folder listing from its cache, which never sees
    another process's shards), with one listing of the root and one of each dataset."""
    url = f"s3://{BUCKET}/shared"
    _write_clips(url, 0, "a" * 11)
    assert query("SELECT count(*) FROM clips", url).rows == [(3,)]
    _write_clips(url, 1, "b" * 11)
    assert query("SELECT count(DISTINCT video_id) FROM clips", url).rows == [(2,)]

    log = tmp_path / "moto.log"
    before = _list_requests(log)
    assert query("SELECT count(*) FROM clips", url).rows == [(6,)]  # unchanged: no rebuild
    deadline = time.time() + 10
    while _list_requests(log) - before < 2 and time.time() < deadline:
        time.sleep(0.1)  # the server logs a request after answering it
    time.sleep(0.3)
    assert _list_requests(log) - before == 2  # the root, then clips (its shards and markers in one)
