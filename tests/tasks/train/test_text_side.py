"""The word-level text sides' vocabulary, read from every clip pair's caption one shard at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import tasks.train.run as run
from models.text import Vocabulary, tokenize
from storage.layout import DataRoot
from storage.shards import read_dataset, write_shard
from tasks.train.config import TrainConfig
from tasks.train.split import is_heldout

CAPTIONS = [
    ["Cut the onion", "cut the Pepper", "the end"],
    ["wash the pepper", "Onion rings", "b a"],  # "a" and "b" tie on count: ordered by the word
    ["stir", "the onion and the pepper"],
]


def _root(tmp_path: Path) -> DataRoot:
    root = DataRoot.from_any(str(tmp_path / "data"))
    for shard, texts in enumerate(CAPTIONS):
        n = len(texts)
        vectors = np.zeros((n, 4), np.float16)
        table = pa.table(
            {
                "clip_id": [f"v{shard}_{i:04d}" for i in range(n)],
                "video_id": [f"v{shard}"] * n,
                "task_id": pa.nulls(n, pa.string()),
                "idx": pa.array(range(n), pa.int32()),
                "start_ms": pa.array([i * 1000 for i in range(n)], pa.int64()),
                "end_ms": pa.array([(i + 1) * 1000 for i in range(n)], pa.int64()),
                "text": texts,
                "vector": pa.ListArray.from_arrays(
                    pa.array(np.arange(n + 1, dtype=np.int32) * 4), pa.array(vectors.reshape(-1))
                ),
            }
        )
        write_shard(root, "clip_pairs", shard, table, config_hash="t", code_version="t", rows_in=n)
    return root


def _every_caption(root: DataRoot) -> list[str]:
    """The reference: the whole dataset's captions read at once."""
    return read_dataset(root, "clip_pairs").to_table(columns=["text"]).column("text").to_pylist()


def _training_captions(root: DataRoot, fraction: float) -> list[str]:
    rows = read_dataset(root, "clip_pairs").to_table(columns=["video_id", "text"]).to_pylist()
    return [r["text"] for r in rows if not is_heldout(r["video_id"], fraction)]


@pytest.mark.parametrize("min_count", [1, 2])
def test_learned_vocabulary_is_the_one_built_from_every_training_caption_at_once(
    tmp_path: Path, min_count: int
) -> None:
    root = _root(tmp_path)
    vocab, vectors = run._text_side(TrainConfig(text="learned", min_word_count=min_count), root, 0.1)
    expected = Vocabulary.build(_training_captions(root, 0.1), min_count=min_count)
    assert vocab is not None and vectors is None
    assert vocab.words == expected.words and vocab.lowercase
    assert vocab.words[:4] == ["the", "cut", "onion", "pepper"]  # most frequent first, a tie by the word


def test_learned_vocabulary_leaves_out_words_only_heldout_captions_use(tmp_path: Path) -> None:
    """Video v1 is held out at 0.1: "wash", "rings", "b" and "a" are only in its captions. They were in the
    vocabulary, rows no training step moves, so their random vectors joined the held-out captions' max
    over words; now they are unknown words, dropped as in a new query. "onion" and "pepper", in training
    captions too, stay, and min_word_count counts their training uses only."""
    root = _root(tmp_path)
    assert is_heldout("v1", 0.1) and not is_heldout("v0", 0.1) and not is_heldout("v2", 0.1)
    vocab, _ = run._text_side(TrainConfig(text="learned"), root, 0.1)
    assert vocab is not None
    assert not {"wash", "rings", "a", "b"} & set(vocab.words)
    assert {"onion", "pepper", "the", "cut", "stir"} <= set(vocab.words)
    assert vocab.encode("wash the onion rings", 4) == [vocab.index["the"], vocab.index["onion"], 0, 0]
    # Counted on training captions: "onion" and "pepper" twice each there (three times with v1's).
    twice, _ = run._text_side(TrainConfig(text="learned", min_word_count=3), root, 0.1)
    assert twice is not None and twice.words == ["the"]


def test_word2vec_keeps_the_words_of_every_caption(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # held-out ones included: frozen GoogleNews vectors learned from none of our data, as the reference
    root = _root(tmp_path)
    seen: dict[str, Any] = {}

    def fake_load(path: str, keep: set[str] | None = None) -> tuple[Vocabulary, None]:
        seen["keep"] = keep
        return Vocabulary([]), None

    monkeypatch.setattr(run, "load_word2vec", fake_load)
    run._text_side(TrainConfig(text="word2vec", word2vec_path="w.bin"), root, 0.1)
    assert seen["keep"] == {t for s in _every_caption(root) for t in tokenize(s)}


def test_captions_are_read_one_shard_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the text column, one shard's rows a read, and the next shard read only once the previous one's
    # captions are used up: memory holds one shard's captions, whatever the size of the dataset.
    root = _root(tmp_path)
    reads: list[tuple[list[str], int]] = []

    class Fragment:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def to_table(self, columns: list[str]) -> pa.Table:
            table = self.inner.to_table(columns=columns)
            reads.append((columns, table.num_rows))
            return table

    class Dataset:  # no whole-dataset reads (to_table, to_batches): only fragments
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def get_fragments(self) -> Any:
            return (Fragment(f) for f in self.inner.get_fragments())

    monkeypatch.setattr(run, "read_dataset", lambda r, d: Dataset(read_dataset(r, d)))
    captions = run._captions(root)
    assert next(captions) == "Cut the onion" and reads == [(["text"], 3)]
    assert [next(captions) for _ in range(2)] == ["cut the Pepper", "the end"] and len(reads) == 1
    assert next(captions) == "wash the pepper" and reads == [(["text"], 3)] * 2
    assert list(captions)[-1] == "the onion and the pepper"
    assert reads == [(["text"], 3), (["text"], 3), (["text"], 2)]
