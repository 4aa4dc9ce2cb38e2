"""Tokenisation, vocabularies and word2vec files (text and binary formats)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.text import Vocabulary, Word2VecFormatError, load_word2vec, tokenize


def test_tokenize_follows_howto100m() -> None:
    assert tokenize("Don't slice the zucchini, OK?") == ["Don't", "slice", "the", "zucchini", "OK"]


def test_vocabulary_drops_unknown_words_and_pads() -> None:
    vocab = Vocabulary(["slice", "the", "zucchini"])
    assert vocab.encode("slice the red zucchini", max_words=5) == [1, 2, 3, 0, 0]
    assert vocab.encode("nothing known", max_words=3) == [0, 0, 0]
    assert vocab.encode("the the the the", max_words=2) == [2, 2]


def test_learned_vocabulary_is_lowercased_and_frequency_ordered() -> None:
    vocab = Vocabulary.build(["Cut the onion", "cut the lemon", "Cut bread"], min_count=2)
    assert vocab.words == ["cut", "the"]
    assert vocab.encode("CUT THE cake", max_words=3) == [1, 2, 0]


def _vectors() -> dict[str, np.ndarray]:
    return {
        "slice": np.array([1.0, 0.0, 0.5], "f4"),
        "zucchini": np.array([0.0, 2.0, -1.0], "f4"),
        "über": np.array([3.0, 3.0, 3.0], "f4"),
    }


def test_word2vec_text_format(tmp_path: Path) -> None:
    path = tmp_path / "vectors.txt"
    lines = ["3 3"] + [f"{w} " + " ".join(str(x) for x in v) for w, v in _vectors().items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    vocab, table = load_word2vec(path, keep={"zucchini", "über"})
    assert vocab.words == ["zucchini", "über"] and table.shape == (3, 3)
    assert table[0].tolist() == [0.0, 0.0, 0.0] and table[1].tolist() == [0.0, 2.0, -1.0]


def test_word2vec_binary_format(tmp_path: Path) -> None:
    path = tmp_path / "vectors.bin"
    payload = b"3 3\n" + b"".join(
        w.encode() + b" " + v.astype("<f4").tobytes() + b"\n" for w, v in _vectors().items()
    )
    path.write_bytes(payload)
    vocab, table = load_word2vec(path)
    assert vocab.words == ["slice", "zucchini", "über"]
    assert table[3].tolist() == [3.0, 3.0, 3.0]


def test_word2vec_bad_header(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("hello world again\n")
    with pytest.raises(Word2VecFormatError, match="first line"):
        load_word2vec(path)


def test_word2vec_path_that_cannot_be_opened_is_a_format_error(tmp_path: Path) -> None:
    """`howto pipeline --set train.word2vec_path=TYPO` ended in FileNotFoundError's traceback (exit 1):
    the loader's own error is an expected failure, one line naming the file."""
    for path in (tmp_path / "missing.bin", tmp_path):
        with pytest.raises(Word2VecFormatError, match=f"{path}: cannot open the word2vec file"):
            load_word2vec(path)


def test_the_sentence_encoder_loads_without_a_third_party_progress_bar(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """transformers drew "Loading weights: 100%|████|" on stderr inside search-clips' output."""
    from models.text import encode_sentences, load_minilm

    model = load_minilm()
    assert "Loading weights" not in capfd.readouterr().err
    vectors = encode_sentences(["grill the steak", "grill a steak"], model)
    assert vectors.shape == (2, 384) and float(vectors[0] @ vectors[1]) > 0.8


def test_fixed_shape_calls_pad_every_sentence_to_a_width_of_its_own() -> None:
    from models.text import fixed_shape_calls

    lengths = [3, 8, 9, 16, 17, 256, 255, 12] + [5] * 9
    calls = fixed_shape_calls(lengths, limit=256, rows=4, step=8)
    width_of = {i: width for width, members in calls for i in members}
    assert sorted(width_of) == list(range(len(lengths)))  # every sentence in exactly one call
    assert sum(len(members) for _, members in calls) == len(lengths)
    assert [width_of[i] for i in range(8)] == [8, 16, 16, 24, 24, 256, 256, 16]
    assert all(width_of[i] > n for i, n in enumerate(lengths) if width_of[i] < 256)  # padding in every call
    # At the limit a sentence may fill its width: room is left for the empty one.
    assert all(len(members) <= (3 if width == 256 else 4) for width, members in calls)
    assert [len(members) for width, members in calls if width == 8] == [4, 4, 2]
    # A sentence's width is its own: the same whatever else is in the list.
    assert all(fixed_shape_calls([n], 256, 4, 8)[0][0] == width_of[i] for i, n in enumerate(lengths))


def test_a_sentence_gets_the_same_minilm_vector_in_any_batch() -> None:
    """Encoded with a longer sentence (more padding), alone (one row) or among many, a caption's vector
    moved by ~1e-7, and a training run that resumed after a crash, encoding its captions in other groups,
    was no longer bit for bit the run straight through."""
    from models.text import encode_sentences, load_minilm

    model = load_minilm()
    short, mid = "peel it", "cut the onion into thin slices"
    long = "now hold the knife at an angle and slide it along the board until the whole onion is done"
    alone = {t: encode_sentences([t], model)[0] for t in (short, mid, long)}
    batches = [
        [long, mid, short],
        [short, mid],
        [mid] * 19 + [short, long],
        [f"step {i}: {long}" for i in range(40)] + [mid, long, short, " ".join([long] * 20)],  # and one cut
    ]
    for batch in batches:
        vectors = encode_sentences(batch, model)
        for text, vector in alone.items():
            if text in batch:
                assert np.array_equal(vectors[batch.index(text)], vector), (text, len(batch))
    assert np.allclose(np.linalg.norm(alone[mid]), 1.0, atol=1e-6)
    assert encode_sentences([], model).shape == (0, 384)
