"""A training shard as it is loaded: the held-out split hashed per video, and the cached text vectors
joined by clip id whether the cache is in the pairs' order or not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from storage.layout import DataRoot
from storage.shards import read_shard, write_shard
from tasks.bench.training import write_bench_pairs
from tasks.train.data import load_shard
from tasks.train.split import heldout_mask, is_heldout


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.5, 1.0])
def test_heldout_mask_is_is_heldout_of_every_row(fraction: float) -> None:
    ids = [f"v{i % 7}" for i in range(40)] + ["x", "v3"]
    column = pa.chunked_array([ids[:15], ids[15:], []])
    expected = np.array([is_heldout(v, fraction) for v in ids])
    assert np.array_equal(heldout_mask(column, fraction), expected)
    assert np.array_equal(heldout_mask(pa.array(ids), fraction), expected)
    assert heldout_mask(pa.array([], pa.string()), fraction).shape == (0,)


def _root(tmp_path: Path) -> DataRoot:
    root = DataRoot.from_any(str(tmp_path / "data"))
    write_bench_pairs(root, videos=20, clips=3, d_video=8, d_text=4, shards=1)
    return root


def _rewrite_text(root: DataRoot, rows: np.ndarray) -> None:
    """The shard's text cache again, with only `rows` of it, in that order."""
    table = read_shard(root, "text_embeddings", 0)
    assert table is not None
    table = table.take(pa.array(rows))
    write_shard(root, "text_embeddings", 0, table, config_hash="t", code_version="t", rows_in=len(table))


def _same(a: object, b: object) -> None:
    for name in ("clip_ids", "texts"):
        assert getattr(a, name) == getattr(b, name)
    for name in ("video_ids", "idx", "spans_ms", "video", "text"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_text_vectors_follow_the_clip_ids_in_any_order_of_the_cache(tmp_path: Path, split: str) -> None:
    root = _root(tmp_path)
    in_order = load_shard(root, 0, split, 0.3, with_text=True)
    cache = read_shard(root, "text_embeddings", 0)
    pairs = read_shard(root, "clip_pairs", 0)
    assert cache is not None and pairs is not None
    ids, rows = cache.column("clip_id").to_pylist(), cache.column("vector").to_pylist()
    vectors = dict(zip(ids, rows, strict=True))
    assert 0 < len(in_order) < pairs.num_rows  # the split took some rows and left others
    assert in_order.text is not None and in_order.text.dtype == np.float32
    assert np.array_equal(in_order.text, np.array([vectors[c] for c in in_order.clip_ids], np.float32))
    assert [
        c for c in pairs.column("clip_id").to_pylist() if c in set(in_order.clip_ids)
    ] == in_order.clip_ids

    _rewrite_text(root, np.random.default_rng(0).permutation(pairs.num_rows))
    _same(load_shard(root, 0, split, 0.3, with_text=True), in_order)


def test_a_cache_may_lack_only_clips_the_split_leaves_out(tmp_path: Path) -> None:
    root = _root(tmp_path)
    pairs = read_shard(root, "clip_pairs", 0)
    assert pairs is not None
    held = heldout_mask(pairs.column("video_id"), 0.3)
    train = load_shard(root, 0, "train", 0.3, with_text=True)

    _rewrite_text(root, np.flatnonzero(~held)[::-1])  # the held-out clips' vectors gone, the rest reversed
    _same(load_shard(root, 0, "train", 0.3, with_text=True), train)
    with pytest.raises(KeyError, match="text_embeddings shard 0 lacks some clips"):
        load_shard(root, 0, "heldout", 0.3, with_text=True)


def _vectors(rows: np.ndarray, value: pa.DataType = pa.float16()) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(rows.ravel(), value), rows.shape[1]).cast(
        pa.list_(value)
    )


def test_vectors_to_numpy_copies_every_chunk_in_order_offsets_applied() -> None:
    """Chunks as a multi-row-group read gives them, one of them a slice (its values start past the
    buffer's head): the rows come out in order, each chunk where it belongs, cast where asked."""
    from tasks.train.data import vectors_to_numpy

    rows = np.arange(60, dtype=np.float16).reshape(12, 5)
    whole = _vectors(rows)
    column = pa.chunked_array(
        [whole.slice(0, 4), pa.array([], whole.type), whole.slice(4, 3), whole.slice(7)]
    )
    assert column.chunk(2).offset == 4  # a slice: flatten must honour its offset
    got = vectors_to_numpy(column)
    assert got.dtype == np.float16 and np.array_equal(got, rows)
    as_float32 = vectors_to_numpy(column, np.float32)
    assert as_float32.dtype == np.float32 and np.array_equal(as_float32, rows.astype(np.float32))
    assert np.array_equal(vectors_to_numpy(whole.slice(5, 2)), rows[5:7])
    assert vectors_to_numpy(pa.chunked_array([], whole.type)).shape == (0, 0)
    keep = np.arange(12) % 3 != 1  # rows kept from every chunk, the sliced one included
    assert np.array_equal(vectors_to_numpy(column, keep=keep), rows[keep])
    assert np.array_equal(vectors_to_numpy(column, np.float32, keep), rows[keep].astype(np.float32))
    assert vectors_to_numpy(column, keep=np.zeros(12, bool)).shape == (0, 5)
    with pytest.raises(ValueError, match="a mask of 11 rows for 12 vectors"):
        vectors_to_numpy(column, keep=keep[:11])


def test_vectors_to_numpy_names_unequal_lengths() -> None:
    from tasks.train.data import vectors_to_numpy

    ragged = pa.array([[1.0, 2.0], [3.0]], pa.list_(pa.float32()))
    with pytest.raises(ValueError, match="unequal length: expected 2"):
        vectors_to_numpy(ragged, np.float32)


def test_a_single_shard_window_is_that_shards_pairs_not_a_copy(tmp_path: Path) -> None:
    """Pairs.concat of one part hands it back: an epoch that reads one shard a window copies its vectors
    (64 MiB for 8192 x 4096 float16) no more than once, in the read."""
    from tasks.train.data import Pairs

    pairs = load_shard(_root(tmp_path), 0, "train", 0.0, with_text=True)
    assert Pairs.concat([pairs]) is pairs
    both = Pairs.concat([pairs, pairs])
    assert len(both) == 2 * len(pairs) and np.array_equal(both.video[len(pairs) :], pairs.video)


def test_an_empty_shard_joins_the_others(tmp_path: Path) -> None:
    """A shard with no rows (a re-crawl's re-check shard when nothing vanished) loads as no pairs, and a
    window holding it joins the other shards' pairs: its vectors of no width failed the join (training
    after such a re-crawl ended in numpy's ValueError)."""
    from tasks.train.data import Pairs

    root = _root(tmp_path)
    for dataset in ("clip_pairs", "text_embeddings"):
        table = read_shard(root, dataset, 0)
        assert table is not None
        write_shard(root, dataset, 1, table.slice(0, 0), config_hash="t", code_version="t", rows_in=0)
    empty = load_shard(root, 1, "train", 0.0, with_text=True)
    assert len(empty) == 0
    pairs = load_shard(root, 0, "train", 0.0, with_text=True)
    window = Pairs.concat([pairs, empty, pairs])
    assert len(window) == 2 * len(pairs)
    assert window.video.shape == (2 * len(pairs), pairs.video.shape[1])
    assert window.text is not None and window.text.shape == (2 * len(pairs), pairs.text.shape[1])
    assert Pairs.concat([empty, pairs]) is pairs


def test_a_text_cache_made_from_earlier_pairs_is_never_read(tmp_path: Path) -> None:
    """Captions redone (other texts, the same clip ids), then a run with another text side rebuilds the pairs
    but not the MiniLM cache: a later reader of the cache (a MiniLM run's held-out eval, `howto audio fac`)
    is told, or falls back to its own text vectors. Before, both took the old captions' vectors as the new
    captions' without a sign."""
    import zlib

    from tasks.audio.fac_data import HASH_DIM, load_root
    from tasks.synthetic.training import write_synthetic_root
    from tasks.train.prepare import build_pairs_shard, cache_text_shard, ready_shards

    def encode(texts: list[str]) -> np.ndarray:
        vectors = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(8) for t in texts]
        return np.stack(vectors).astype(np.float32)

    root = write_synthetic_root(tmp_path / "root", n_videos=8, n_steps=4, dim=16)
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
        cache_text_shard(root, shard, encode)
    pairs = load_shard(root, 0, "train", 0.0, True)
    assert pairs.text is not None and np.allclose(pairs.text, encode(pairs.texts))
    assert load_root(root)[0].bags.shape[2] == 8  # FAC reads the cached vectors
    write_synthetic_root(root, n_videos=8, n_steps=6, dim=16, seed=5)  # other captions, same clip ids
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    with pytest.raises(FileNotFoundError, match="text_embeddings shard 0 is missing or was made from other"):
        load_shard(root, 0, "train", 0.0, True)
    assert load_root(root)[0].bags.shape[2] == HASH_DIM  # FAC falls back to its hashed bag of words
    for shard in ready_shards(root):  # the cache made again: read again
        cache_text_shard(root, shard, encode)
    pairs = load_shard(root, 0, "train", 0.0, True)
    assert pairs.text is not None and np.allclose(pairs.text, encode(pairs.texts))
    assert load_root(root)[0].bags.shape[2] == 8
