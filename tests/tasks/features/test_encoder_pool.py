"""The pool that lends prepared encoders to one shard at a time, and the key it keeps them under."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from storage.layout import DataRoot
from tasks.features.config import ExtractFeaturesConfig
from tasks.features.encoder_pool import KeyedPool
from tasks.features.pipeline import EncodersKey, encoders_key, on_another_gpu


def _builder(log: list[int]) -> object:
    def build() -> object:
        log.append(len(log))
        return object()

    return build


def test_a_returned_value_is_lent_again_and_a_busy_one_is_not() -> None:
    pool: KeyedPool[object] = KeyedPool()
    builds: list[int] = []
    with pool.lease("k", _builder(builds)) as (first, reused):
        assert not reused
        with pool.lease("k", _builder(builds)) as (second, reused_inner):
            assert second is not first and not reused_inner  # in use: a second one is built
    assert builds == [0, 1] and pool.idle() == 2
    with pool.lease("k", _builder(builds)) as (third, reused):
        assert reused and third in (first, second)
    with pool.lease("other", _builder(builds)) as (fourth, reused):
        assert not reused and fourth not in (first, second)
    assert pool.built == 3


def test_a_value_comes_back_when_its_user_fails_and_clear_drops_the_idle_ones() -> None:
    pool: KeyedPool[object] = KeyedPool()
    builds: list[int] = []
    with pytest.raises(RuntimeError), pool.lease("k", _builder(builds)):
        raise RuntimeError("the shard failed")
    assert pool.idle() == 1
    pool.clear()
    assert pool.idle() == 0
    with pool.lease("k", _builder(builds)) as (_, reused):
        assert not reused
    assert builds == [0, 1]


def test_threads_never_hold_the_same_value_at_once() -> None:
    pool: KeyedPool[object] = KeyedPool()
    held: set[int] = set()
    clashes: list[int] = []
    guard = threading.Lock()
    start = threading.Barrier(4)

    def shard() -> None:
        start.wait()
        for _ in range(200):
            with pool.lease("k", object) as (value, _):
                with guard:
                    if id(value) in held:
                        clashes.append(id(value))
                    held.add(id(value))
                with guard:
                    held.discard(id(value))

    threads = [threading.Thread(target=shard) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clashes == [] and 1 <= pool.built <= 4 and pool.idle() == pool.built


def test_the_key_follows_what_decides_the_encoders_and_nothing_else(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path / "data")
    weights = tmp_path / "resnet152.pth"
    weights.write_bytes(b"x" * 10)
    cfg = ExtractFeaturesConfig(resnet_weights=str(weights), random_weights=True)
    key = encoders_key(cfg, root)
    # Batching, decoding and safety caps do not change the encoders.
    same = cfg.model_copy(update={"batch_2d": 8, "decode_workers": 4, "max_download_mb": 10.0})
    assert encoders_key(same, root) == key
    for change in ({"precision": "fp32"}, {"device": "cuda:1"}, {"short_side_2d": 64}, {"compile": "off"}):
        assert encoders_key(cfg.model_copy(update=change), root) != key, change
    assert encoders_key(cfg, DataRoot.from_any(tmp_path / "other")) != key  # calibrated weights live there
    # The same path with new contents (a replaced file) is loaded anew.
    weights.write_bytes(b"y" * 11)
    assert encoders_key(cfg, root) != key
    stamp = encoders_key(cfg, root)
    os.utime(weights, ns=(1, 1))
    assert encoders_key(cfg, root) != stamp


def test_a_lease_evicts_the_idle_values_it_names_and_never_one_in_use() -> None:
    pool: KeyedPool[object] = KeyedPool()
    with pool.lease(EncodersKey("cuda:0", ("a",)), object):
        pass
    with pool.lease(EncodersKey("cuda:1", ("a",)), object), pool.lease(EncodersKey("cpu", ("a",)), object):
        # cuda:1 is in use here: a lease on cuda:0 that evicts other GPUs cannot take it away.
        with pool.lease(EncodersKey("cuda:0", ("a",)), object, evict=on_another_gpu("cuda:0")) as (_, reused):
            assert reused and pool.evicted == 0
    assert pool.idle() == 3
    with pool.lease(EncodersKey("cuda:0", ("a",)), object, evict=on_another_gpu("cuda:0")) as (_, reused):
        assert reused
    assert pool.evicted == 1  # the idle cuda:1 set went; the CPU one stays (no card to share)
    with pool.lease(EncodersKey("cuda:1", ("a",)), object) as (_, reused):
        assert not reused


def test_features_keys_name_their_device_for_eviction(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path / "data")
    cfg = ExtractFeaturesConfig(random_weights=True)
    other = on_another_gpu("cuda:0")
    assert other(encoders_key(cfg.model_copy(update={"device": "cuda:1"}), root))
    assert not other(encoders_key(cfg.model_copy(update={"device": "cuda:0"}), root))
    assert not other(encoders_key(cfg.model_copy(update={"device": "cpu"}), root))
    assert not other(encoders_key(cfg, root))  # "auto" on CPU
