"""`howto import howto100m --replace` removes the earlier import's shards: queries keep working straight
away, even when the new import then fails on a broken file."""

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


def test_a_failed_replace_leaves_a_catalog_that_answers(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert runner.invoke(app, _args(write_release(tmp_path / "a"), root)).exit_code == 0
    assert _count(root, "clips") == 7
    broken = write_release(tmp_path / "b")
    broken.captions.write_text('{"nVbIUDjzWY4": {"start": [1.0], "end": [2.0], "text": ["a"]}, "x": ')
    out = runner.invoke(app, [*_args(broken, root), "--replace"])
    assert out.exit_code == 2 and "caption.json" in out.stderr, out.output
    # the earlier import's shards are gone and the views say so (no "No files found" error)
    assert _count(root, "clips") == 0 and _count(root, "frame_features") == 0
