"""An s3:// data root on a real S3-compatible server (moto's standalone server, started on loopback): the
demo pipeline through captions writes its shards and markers there, and DuckDB queries them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import fsspec
import httpx
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pytest
import s3fs

from flows.demo import demo_pipeline_config
from flows.pipeline import pipeline
from storage.catalog import query
from storage.layout import DataRoot
from storage.shards import read_dataset, read_shard, scan_filesystem
from tests.deploy.prefect_procs import free_port

BUCKET = "howto-test"


@pytest.fixture()
def s3_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto_server on 127.0.0.1 with throwaway credentials; s3fs (and botocore) find it by AWS_ENDPOINT_URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with (tmp_path / "moto.log").open("wb") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.time() + 60
        while True:
            try:
                httpx.get(endpoint, timeout=2)
                break
            except httpx.HTTPError:
                if time.time() > deadline or server.poll() is not None:
                    pytest.fail("moto_server did not start:\n" + (tmp_path / "moto.log").read_text()[-2000:])
                time.sleep(0.3)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
        }.items():
            monkeypatch.setenv(name, value)
        s3fs.S3FileSystem.clear_instance_cache()  # no cached filesystem from another endpoint
        s3fs.S3FileSystem().mkdir(BUCKET)
        yield endpoint
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


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
