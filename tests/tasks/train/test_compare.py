"""`howto train compare`: same seeds and split for every method, a control, one table, one plot."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tasks.synthetic.training import write_synthetic_root
from tasks.train.compare import DEFAULT_METHODS, RECIPES, compare, method_config
from tasks.train.config import TrainConfig
from tasks.train.prepare import build_pairs_shard, data_snapshot, ready_shards
from tasks.train.report import read_card
from tests.tasks.train.synthetic_roots import one_torch_thread


def test_method_configs_share_everything_but_the_recipe() -> None:
    base = TrainConfig(text="learned", d=32, epochs=2)
    a, b = method_config(base, "infonce", 1), method_config(base, "videoclip", 1)
    same = {k for k in TrainConfig.model_fields if k not in set(RECIPES["videoclip"]) | {"run_id", "loss"}}
    assert all(getattr(a, k) == getattr(b, k) for k in same)
    assert a.run_id != b.run_id and a.run_id == method_config(base, "infonce", 1).run_id
    control = method_config(base, "infonce", 1, shuffled=True)
    assert control.shuffle_pairs and "shuffled" in (control.run_id or "")
    with pytest.raises(ValueError, match="unknown method"):
        method_config(base, "clip", 0)
    assert set(DEFAULT_METHODS) <= set(RECIPES)  # every method compared by default has its recipe


@pytest.fixture
def one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


@pytest.mark.usefixtures("one_thread")
def test_compare_prints_and_saves_one_table(tmp_path: Path) -> None:
    root = write_synthetic_root(tmp_path / "root", n_videos=24, n_steps=12, dim=64)
    args = [
        "train", "compare", "--data-root", str(root.url), "--methods", "infonce,videoclip", "--seeds", "0",
        "--epochs", "1", "--text", "learned", "--d", "32", "--videos-per-batch", "4", "--name", "t",
    ]  # fmt: skip
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "| method | R@1 | R@5 | R@10 | MedR |" in out.stdout
    assert "| shuffled (infonce) |" in out.stdout and "best: " in out.stdout
    base = Path(root.path("train", "compare", "t"))
    record = json.loads((base / "compare.json").read_text())
    assert set(record["methods"]) == {"infonce", "videoclip", "shuffled (infonce)"}
    assert (base / "compare.png").read_bytes()[:4] == b"\x89PNG" and (base / "compare.md").is_file()
    # A rerun reuses the finished runs.
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and again.stdout.count("(cached)") == 3
    bad = CliRunner().invoke(app, ["train", "compare", "--data-root", str(root.url), "--methods", "clip"])
    assert bad.exit_code == 2 and "unknown clip" in bad.stderr
    no_audio = CliRunner().invoke(app, [*args, "--audio"])  # refused before any training
    assert no_audio.exit_code == 2 and "no audio_features shards" in no_audio.stderr


@pytest.mark.usefixtures("one_thread")
def test_compare_adds_audio_rows_when_the_root_has_audio(tmp_path: Path) -> None:
    from tasks.synthetic.audio import write_synthetic_audio

    root = write_synthetic_audio(write_synthetic_root(tmp_path / "root", n_videos=24, n_steps=12, dim=64))
    args = [
        "train", "compare", "--data-root", str(root.url), "--methods", "infonce", "--control", "",
        "--seeds", "0", "--epochs", "1", "--text", "learned", "--d", "32", "--videos-per-batch", "4",
        "--audio-epochs", "4", "--name", "a",
    ]  # fmt: skip
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert (
        "| audio variant | video->audio R@5 | audio->video R@5 | audio->text R@5 (zero-shot) |" in out.stdout
    )
    for variant in ("fac", "shared", "fac, audio shuffled"):
        assert f"| {variant} | " in out.stdout
    record = json.loads((Path(root.path("train", "compare", "a")) / "compare.json").read_text())
    audio = record["audio"]["variants"]
    # The same split as the text rows: FAC learns video<->audio, the shuffled control does not.
    assert audio["fac"]["mean"]["v2a_R@5"] > audio["fac, audio shuffled"]["mean"]["v2a_R@5"] + 0.2
    assert Path(record["audio"]["fac_checkpoint"]).is_file()
    assert "| audio variant |" in (Path(root.path("train", "compare", "a")) / "compare.md").read_text()
    off = CliRunner().invoke(app, [*args[:-2], "--name", "b", "--no-audio"])
    assert off.exit_code == 0 and "audio variant" not in off.stdout


@pytest.mark.usefixtures("one_thread")
def test_compare_trains_new_runs_when_the_pairs_are_rebuilt_from_new_data(tmp_path: Path) -> None:
    """Upstream redone (captions re-cleaned, a features shard redone with fewer videos): the pairs are rebuilt
    and compare trains new runs on them. Before, a compare run's id came from its config alone, so the rerun
    read back the runs trained on the old pairs and printed their scores as '(cached)'."""
    root = write_synthetic_root(tmp_path / "root", n_videos=24, n_steps=12, dim=64)
    base = TrainConfig(text="learned", d=32, epochs=1, videos_per_batch=4)

    def compare_once() -> dict[str, object]:
        for shard in ready_shards(root):
            build_pairs_shard(root, shard)
        [result] = compare(root, base, ["infonce"], [0], control="", progress=lambda _line: None)
        return result.runs[0]

    first = compare_once()
    assert compare_once()["cached"] is True  # same data: read back, not trained again
    write_synthetic_root(root, n_videos=16, n_steps=12, dim=64, seed=1)  # both shards redone, fewer videos
    again = compare_once()
    assert again["cached"] is False and again["run_id"] != first["run_id"]
    card = read_card(root, str(again["run_id"]))
    assert card is not None and card["data"]["hash"] == data_snapshot(root)["hash"]
    assert card["data"]["clips"] == 16 * 8
