"""`howto import howto100m --replace` keeps the earlier import until the new one has finished: a replace that
fails on a broken file leaves every query answering from the earlier import; a good one swaps in the new."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app
from tests.tasks.howto100m.release_files import import_args, write_release

runner = CliRunner()


def _args(release, root: Path) -> list[str]:  # type: ignore[no-untyped-def]
    return import_args(release, root, videos_per_shard=2)


def _count(root: Path, table: str) -> int:
    out = runner.invoke(app, ["query", f"SELECT count(*) AS n FROM {table}", "--format", "json",
                              "--data-root", str(root)])  # fmt: skip
    assert out.exit_code == 0, out.output
    return int(json.loads(out.stdout)[0]["n"])


def test_a_failed_replace_leaves_the_earlier_import_in_the_catalog(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert runner.invoke(app, _args(write_release(tmp_path / "a"), root)).exit_code == 0
    before = {table: _count(root, table) for table in ("videos", "clips", "frame_features", "tasks")}
    assert before["clips"] == 7 and before["frame_features"] > 0
    broken = write_release(tmp_path / "b")
    broken.captions.write_text('{"nVbIUDjzWY4": {"start": [1.0], "end": [2.0], "text": ["a"]}, "x": ')
    out = runner.invoke(app, [*_args(broken, root), "--replace"])
    assert out.exit_code == 2 and "caption.json" in out.stderr, out.output
    assert {table: _count(root, table) for table in before} == before
    # The repaired files (one video fewer) replace it: the catalog then shows the new import alone.
    fewer = write_release(tmp_path / "c")
    captions = json.loads(fewer.captions.read_text())
    captions.pop("rwmt7Cbuvfs")
    fewer.captions.write_text(json.dumps(captions))
    out = runner.invoke(app, [*_args(fewer, root), "--replace"])
    assert out.exit_code == 0, out.output
    assert _count(root, "clips") == 6 and _count(root, "videos") == before["videos"]
    assert _count(root, "tasks") == before["tasks"]
