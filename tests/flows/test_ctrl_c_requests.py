"""Ctrl-C in the network stages: no request is made after it, so a shard stops at once instead of asking the
site for every item left at the polite rate (minutes, on the real web)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from flows.demo import demo_pipeline_config
from flows.pipeline import pipeline
from storage.layout import DataRoot
from storage.shards import list_markers
from tasks import interrupts


def test_no_request_after_ctrl_c_in_search_and_captions(
    demo_site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "data"
    data = DataRoot.from_any(root)
    cfg = demo_pipeline_config(demo_site.url)
    pipeline(cfg=cfg, data_root=str(root), stages=["tasks"])
    ctrl_c = threading.Event()  # what watch_sigint's handler sets on the terminal's SIGINT
    monkeypatch.setattr(interrupts, "_seen", ctrl_c)

    ctrl_c.set()
    with pytest.raises(KeyboardInterrupt, match="Ctrl-C"):
        pipeline(cfg=cfg, data_root=str(root), stages=["search"])
    assert not list_markers(data, "search_results") and not list_markers(data, "videos")
    assert not list(root.rglob("*.info.json"))  # not one video probed

    ctrl_c.clear()  # the rerun: the search as if never interrupted
    pipeline(cfg=cfg, data_root=str(root), stages=["search"])
    assert list_markers(data, "videos") and list(root.rglob("*.info.json"))

    ctrl_c.set()
    with pytest.raises(KeyboardInterrupt, match="Ctrl-C"):
        pipeline(cfg=cfg, data_root=str(root), stages=["captions"])
    assert not list_markers(data, "captions")
    assert not list(root.rglob("*.vtt"))  # not one caption file asked for
