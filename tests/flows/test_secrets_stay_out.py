"""Secrets (cookies file, proxy URL) reach yt-dlp and nothing else: a unique marker placed in each is used
by the real search and captions stages against the demo site, then searched for in the Prefect database,
Prefect's home, the logs, every file of the data root and every artifact: it is nowhere."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import SecretStr

from flows.fetch_captions import fetch_captions
from flows.search_videos import search_videos
from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import read_dataset, write_shard
from tasks.captions.config import FetchCaptionsConfig
from tasks.demo.site import DemoSite
from tasks.search.config import SearchVideosConfig
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.politeness import PolitenessSettings
from tests.flows.forward_proxy import ForwardProxy

pytestmark = pytest.mark.slow

MARKER = f"mk{uuid.uuid4().hex}"  # in every secret, and nowhere else
PROXY_ENV = f"HOWTO_TEST_PROXY_{uuid.uuid4().hex[:8].upper()}"
COOKIES_BLOCK = f"howto-test-cookies-{uuid.uuid4().hex[:8]}"


def seed_tasks(root: DataRoot, site: DemoSite, n: int = 2) -> None:
    """A `tasks` shard of `n` demo articles that have videos (what stage 1 would write)."""
    schema = get_schema("tasks").schema
    rows = [
        {**dict.fromkeys(schema.names), "task_id": re.sub(r"\W+", "-", a.title.lower()), "title": a.title}
        | {"category_path": list(reversed(a.category_path)), "keep": True, "status": "ok", "crawl_id": "c0"}
        for a in [a for a in site.world.articles if a.videos][:n]
    ]
    table = pa.Table.from_pylist(rows, schema=schema)
    write_shard(root, "tasks", 0, table, config_hash="t", code_version="t", rows_in=len(rows))


def cookies_file(folder: Path) -> Path:
    """A Netscape cookies file for the demo host whose path and cookie value both carry the marker."""
    path = folder / f"cookies-{MARKER}.txt"
    path.write_text(f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tSID\t{MARKER}\n")
    return path


def leaks_in_files(folder: Path) -> list[str]:
    """Files under `folder` whose bytes, or whose decoded Parquet rows, contain the marker."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        text = json.dumps(pq.read_table(path).to_pylist(), default=str) if path.suffix == ".parquet" else ""
        if MARKER.encode() in data or MARKER in text:
            found.append(str(path))
    return found


def api_records() -> str:
    """Every flow run (parameters included), artifact and log the Prefect API holds, as one text."""
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)  # logs still queued in this process reach the server first
    with get_client(sync_client=True) as client:
        records: list[Any] = [r.model_dump(mode="json") for r in client.read_flow_runs()]
        records += [a.model_dump(mode="json") for a in client.read_artifacts()]
        records += [log.model_dump(mode="json") for log in client.read_logs()]
    return json.dumps(records)


def test_secrets_reach_ytdlp_and_are_stored_nowhere(
    demo_site: DemoSite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    # Every line our code and the libraries could log, yt-dlp's chatter included (during a flow run the
    # root logger's level alone does not reach our packages' debug lines).
    caplog.set_level(logging.DEBUG)
    for name in ("tasks", "flows", "storage", "yt_dlp"):
        caplog.set_level(logging.DEBUG, logger=name)
    demo_site.set_troubles()
    root = DataRoot.from_any(tmp_path / "data")
    seed_tasks(root, demo_site)
    # The cookies file's path from a Prefect Secret block, the proxy URL from an environment variable.
    Secret(value=SecretStr(str(cookies_file(tmp_path)))).save(COOKIES_BLOCK, overwrite=True)
    with ForwardProxy() as proxy:
        monkeypatch.setenv(PROXY_ENV, f"http://howto:{MARKER}@127.0.0.1:{proxy.port}")
        access = YoutubeAccess(
            site_url=demo_site.url,
            cookies=f"block:{COOKIES_BLOCK}",
            proxy=f"env:{PROXY_ENV}",
            politeness=PolitenessSettings(requests_per_s=0, jitter_s=0),
        )
        search = SearchVideosConfig(search_prefix="demosearch", max_results=4, crawl_id="crawl-secrets")
        searched = search_videos(search, root.url, access)
        captioned = fetch_captions(FetchCaptionsConfig(), root.url, access)

    # The secrets were really used: every request went through the proxy with its credentials and
    # carried the cookie read from the file the block names.
    assert searched["errors"] == 0 and captioned["errors"] == 0 and captioned["rows_out"] > 0
    assert proxy.seen and all(
        base64.b64decode(h["proxy-authorization"].split()[1]).decode() == f"howto:{MARKER}"
        for h in proxy.seen
    )
    assert any(MARKER in h.get("cookie", "") for h in proxy.seen)
    assert read_dataset(root, "clips").count_rows() > 0

    # ... and are stored nowhere: not in the data root (shards, markers, info files, .vtt, catalog) ...
    assert leaks_in_files(Path(root.url)) == []
    # ... nor in what Prefect keeps: its database (flow run parameters, logs, artifacts, events; the
    # Secret block is stored encrypted) and its home folder.
    db = Path(str(PREFECT_SERVER_DATABASE_CONNECTION_URL.value()).split("///", 1)[1])
    records = api_records()
    assert f"env:{PROXY_ENV}" in records  # the parameters were recorded: as references only
    assert MARKER not in records
    stored = b"".join(p.read_bytes() for p in db.parent.iterdir() if p.is_file())
    assert PROXY_ENV.encode() in stored  # the right database (its write-ahead log included) ...
    assert leaks_in_files(db.parent) == [] and leaks_in_files(Path(os.environ["PREFECT_HOME"])) == []
    # ... nor in any log line or console output of the run.
    assert MARKER not in caplog.text
    out, err = capfd.readouterr()
    assert MARKER not in out + err
