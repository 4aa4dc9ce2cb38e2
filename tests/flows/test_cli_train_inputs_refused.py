"""Training inputs refused before any stage runs, and a run's damaged files named: a run id or comparison
name that is not one safe folder name, an empty --seeds, a --word2vec file that is not word2vec, a
malformed model_card.json, a folder where a checkpoint file should be. One `error:` line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from storage.layout import DataRoot
from tasks.synthetic.training import write_synthetic_root
from tasks.train.checkpoints import BadRunName, check_name, run_dir
from tests.flows.cli_checks import invoke, one_error_line

runner = CliRunner()


# -- run ids and comparison names -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["../../x", "a/b", "..", ".hidden", "", "a\\b", "x" * 200, "run id"])
def test_unsafe_run_names_are_refused(bad: str) -> None:
    with pytest.raises(BadRunName, match="--run-id"):
        check_name(bad)
    with pytest.raises(BadRunName):
        run_dir(DataRoot.from_any("/tmp/root"), bad)


@pytest.mark.parametrize("good", ["run-2dd80b8ac3a0", "real", "max_margin.s0", "A-1_b.c"])
def test_plain_run_names_pass(good: str) -> None:
    assert check_name(good) == good


def test_train_run_id_outside_the_root_is_refused_before_training(tmp_path: Path) -> None:
    root = tmp_path / "data"
    one_error_line(
        invoke("train", "--data-root", str(root), "--run-id", "../../escape"), "--run-id", "../../escape"
    )
    assert not (tmp_path / "escape").exists() and not (root / "train").exists()


def test_compare_name_and_empty_seeds_are_refused_before_training(tmp_path: Path) -> None:
    root = str(tmp_path / "data")
    one_error_line(invoke("train", "compare", "--data-root", root, "--name", "../../x"), "--name", "../../x")
    one_error_line(invoke("train", "compare", "--data-root", root, "--seeds", ""), "--seeds")
    one_error_line(invoke("train", "compare", "--data-root", root, "--seeds", " , "), "--seeds")
    one_error_line(invoke("train", "compare", "--data-root", root, "--seeds", "0,-1"), "--seeds", "0 or more")
    assert not (tmp_path / "data" / "clip_pairs").exists()


# -- --word2vec checked before the pairs stage -------------------------------------------------------------


@pytest.fixture(scope="module")
def train_root(tmp_path_factory: pytest.TempPathFactory) -> DataRoot:
    return write_synthetic_root(tmp_path_factory.mktemp("w2v-root"), n_videos=8, shards=1, dim=64)


@pytest.mark.parametrize("content", [b"", b"\xff\xfe garbage bytes\n\x00\x01", b"hello world\n1 2 3\n"])
def test_a_word2vec_file_without_its_header_fails_before_any_stage(
    train_root: DataRoot, tmp_path: Path, content: bytes
) -> None:
    bad = tmp_path / "vectors.bin"
    bad.write_bytes(content)
    result = invoke("train", "--data-root", train_root.url, "--text", "word2vec", "--word2vec", str(bad))
    one_error_line(result, str(bad), "first line must be '<words> <dim>'")
    assert not Path(train_root.url, "clip_pairs").exists()  # the pairs stage never ran


def test_a_word2vec_folder_says_so(train_root: DataRoot, tmp_path: Path) -> None:
    result = invoke("train", "--data-root", train_root.url, "--text", "word2vec", "--word2vec", str(tmp_path))
    one_error_line(result, str(tmp_path), "is a directory")


# -- a run's files that are not what they should be --------------------------------------------------------


def _run_with(tmp_path: Path, card: str | None, checkpoint_is_folder: bool) -> Path:
    root = tmp_path / "data"
    run = root / "train" / "run-x"
    (run / "checkpoints").mkdir(parents=True)
    epoch = run / "checkpoints" / "epoch-1.pt"
    if checkpoint_is_folder:
        epoch.mkdir()
    else:
        epoch.write_bytes(b"not read: the card is read first")
    if card is not None:
        (run / "model_card.json").write_text(card)
    return root


@pytest.mark.parametrize("card", ["{bad", "[1, 2]x", '{"config": 3}'])
def test_search_with_a_malformed_model_card_names_the_card(tmp_path: Path, card: str) -> None:
    root = _run_with(tmp_path, card, checkpoint_is_folder=False)
    result = invoke("search-clips", "slice zucchini", "--data-root", str(root))
    one_error_line(result, str(root / "train" / "run-x" / "model_card.json"), "not a model card")


def test_a_folder_in_place_of_the_checkpoint_names_it(tmp_path: Path) -> None:
    root = _run_with(tmp_path, None, checkpoint_is_folder=True)
    epoch = str(root / "train" / "run-x" / "checkpoints" / "epoch-1.pt")
    one_error_line(invoke("search-clips", "slice zucchini", "--data-root", str(root)), epoch, "a directory")
    one_error_line(invoke("eval", "heldout", "--data-root", str(root)), epoch, "a directory")


def test_eval_checkpoint_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    root = _run_with(tmp_path, None, checkpoint_is_folder=False)
    folder = tmp_path / "ckpts"
    folder.mkdir()
    result = invoke("eval", "heldout", "--data-root", str(root), "--checkpoint", str(folder))
    one_error_line(result, "--checkpoint", str(folder), "is a directory")


def test_a_run_id_set_through_the_config_is_checked_up_front() -> None:
    """`pipeline --set train.run_id=../x` is refused by the config itself, before any stage runs."""
    from pydantic import ValidationError

    from tasks.train.config import TrainConfig

    with pytest.raises(ValidationError, match="run_id"):
        TrainConfig(run_id="../x")
    assert TrainConfig(run_id="run-2026.12_a").run_id == "run-2026.12_a"


@pytest.mark.parametrize("card", ["{bad", "[1, 2]", b"\xff\xfe"])
def test_recording_an_evaluation_on_a_malformed_card_names_it(tmp_path: Path, card: str | bytes) -> None:
    from storage.layout import DataRoot
    from tasks.train.checkpoints import BadRunFile
    from tasks.train.report import add_evaluation

    root = _run_with(tmp_path, None, checkpoint_is_folder=False)
    path = root / "train" / "run-x" / "model_card.json"
    path.write_bytes(card if isinstance(card, bytes) else card.encode())
    with pytest.raises(BadRunFile, match="not a model card"):
        add_evaluation(DataRoot.from_any(root), "run-x", "heldout/test", {"r@1": 0.5})
    assert path.read_bytes() == (card if isinstance(card, bytes) else card.encode())  # left as it was


def test_a_root_with_nothing_to_train_on_is_refused_before_prefect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty root (or one with clips but no frame features): before, the command started Prefect's
    temporary server and the flow, to say 20 s later what the command can see at once."""
    import flows.train_embedding

    def no_flow(*_a: object, **_k: object) -> None:
        raise AssertionError("the training flow was started")

    monkeypatch.setattr(flows.train_embedding, "train_embedding", no_flow)
    root = tmp_path / "root"
    root.mkdir()
    one_error_line(invoke("train", "--data-root", str(root)), "no clip_pairs shards", "howto features run")
    write_synthetic_root(root, n_videos=4, n_steps=2, clips_per_video=2, dim=8)
    out = invoke("train", "--data-root", str(root))  # a root with inputs goes on to the flow
    assert isinstance(out.exception, AssertionError) and "flow was started" in str(out.exception)
