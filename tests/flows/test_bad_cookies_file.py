"""A cookies file yt-dlp refuses whole stops the stage before its first request, in one line that shows
neither the file's path nor its content; before, every search failed with yt-dlp's error, which quoted the
offending line (the cookie value) into the rows, the logs and the catalog, and the command exited 0."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pyarrow as pa
import pytest

from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import list_markers, write_shard
from tasks.demo.site import DemoSite
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.errors import ErrorKind, StageHalted
from tasks.youtube.thread_clients import ThreadClients
from tests.flows.cli_checks import invoke, one_error_line

pytestmark = pytest.mark.slow

SECRET = "g.a000bAdCookieSECRETvalue"
FAR = int(time.time()) + 300 * 86400
HEADER = "# Netscape HTTP Cookie File\r\n# This is a generated file!  Do not edit.\r\n\r\n"
GOOD_LINE = f"#HttpOnly_.youtube.com\tTRUE\t/\tTRUE\t{FAR}\t__Secure-3PSID\t{SECRET}\r\n"
BROKEN = {
    # Saved again by a Windows editor: a byte-order mark before the header.
    "bom": ("\ufeff" + HEADER + GOOD_LINE, "byte-order mark"),
    # A hand-edited line: the subdomain flag says TRUE, the domain has no leading dot.
    "flag": (HEADER + GOOD_LINE + f"youtube.com\tTRUE\t/\tFALSE\t{FAR}\tSID\t{SECRET}\r\n", "line 5"),
    # Spaces for tabs: yt-dlp skips the line, printing it to stderr as it is (past any logger), value and all.
    "skipped": (HEADER + GOOD_LINE + f".youtube.com TRUE / FALSE {FAR} SID {SECRET}\r\n", "line 5 is not"),
}


def seed_tasks(root: DataRoot, site: DemoSite) -> None:
    """A `tasks` shard of two demo articles that have videos (what stage 1 would write)."""
    schema = get_schema("tasks").schema
    rows = [
        {**dict.fromkeys(schema.names), "task_id": re.sub(r"\W+", "-", a.title.lower()), "title": a.title}
        | {"category_path": list(reversed(a.category_path)), "keep": True, "status": "ok", "crawl_id": "c0"}
        for a in [a for a in site.world.articles if a.videos][:2]
    ]
    table = pa.Table.from_pylist(rows, schema=schema)
    write_shard(root, "tasks", 0, table, config_hash="t", code_version="t", rows_in=len(rows))


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_cookies_file_yt_dlp_refuses_stops_the_search_before_any_request(
    site: DemoSite, tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    text, why = BROKEN[kind]
    cookies = tmp_path / f"cookies-{SECRET}.txt"  # the path is a secret's value too
    cookies.write_bytes(text.encode())
    root = DataRoot.from_any(tmp_path / "data")
    seed_tasks(root, site)
    before = len(site.requests)
    result = invoke(
        "search-videos",
        "--demo-url",
        site.url,
        "--data-root",
        root.url,
        "--rate",
        "0",
        "--cookies",
        str(cookies),
    )
    line = one_error_line(
        result, "cookies file youtube.cookies (env:HOWTO_YTDLP_COOKIES)", why, "howto doctor"
    )
    assert len(site.requests) == before  # nothing was requested
    assert list_markers(root, "search_results") == []  # no shard of error rows to redo
    assert SECRET not in result.output + line + caplog.text
    leaked = [p for p in Path(root.url).rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaked == []


def test_the_threads_clients_check_the_file_in_the_tasks_thread(tmp_path: Path) -> None:
    # The probe and captions stages make a client per worker thread: the check comes first, once.
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(BROKEN["bom"][0])
    access = YoutubeAccess(cookies="env:HOWTO_TEST_COOKIES")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOWTO_TEST_COOKIES", str(cookies))
        with pytest.raises(StageHalted) as info:
            ThreadClients(access)
        assert info.value.kind is ErrorKind.BAD_COOKIES and "env:HOWTO_TEST_COOKIES" in str(info.value)
        cookies.write_text(HEADER + GOOD_LINE)
        with ThreadClients(access) as clients:
            assert clients.get()._params["cookiefile"] == str(cookies)  # a good file goes to yt-dlp
