"""The calibrated random weights are cached per data root: a damaged cache file is recomputed, not fatal."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

from storage.layout import DataRoot
from tasks.features.extractor import MODEL_2D, MODEL_3D
from tasks.features.weights import _calibrated_path, _random_calibrated, machine_calibration_path


@pytest.fixture(autouse=True)
def machine_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This machine's calibrations, in a folder of the test's own."""
    folder = tmp_path / "machine-cache"
    monkeypatch.setenv("HOWTO_CALIBRATION_CACHE", str(folder))
    return folder


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_cache_cut_short_is_recomputed_to_the_same_weights(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = DataRoot.from_any(tmp_path / "root")
    first = _random_calibrated(root, MODEL_2D, seed=3, size=32)
    cache = Path(_calibrated_path(root, MODEL_2D, 3, 32))
    good = cache.read_bytes()
    # (Every other kind of damage is the same NotACheckpoint: tests/models/test_torch_files.py.)
    cache.write_bytes(good[: len(good) // 2])
    machine_calibration_path(MODEL_2D, 3, 32).unlink()  # so that it is computed again, not copied

    again = _random_calibrated(root, MODEL_2D, seed=3, size=32)

    assert _same_weights(first, again)
    assert "recomputing it" in caplog.text and str(cache) in caplog.text
    # The cache was rewritten whole and is read back without recomputing next time.
    caplog.clear()
    third = _random_calibrated(root, MODEL_2D, seed=3, size=32)
    assert _same_weights(first, third) and "recomputing" not in caplog.text


def test_a_new_data_root_takes_this_machines_calibration(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = _random_calibrated(DataRoot.from_any(tmp_path / "a"), MODEL_2D, seed=3, size=32)
    assert "calibrating BatchNorm" in caplog.text and machine_calibration_path(MODEL_2D, 3, 32).is_file()
    caplog.clear()
    other = DataRoot.from_any(tmp_path / "b")
    second = _random_calibrated(other, MODEL_2D, seed=3, size=32)
    assert _same_weights(first, second) and "calibrating" not in caplog.text
    # The new root's file is a hard link of the machine's copy (same file system): no copy of hundreds of MB.
    kept, machine = Path(_calibrated_path(other, MODEL_2D, 3, 32)), machine_calibration_path(MODEL_2D, 3, 32)
    assert kept.stat().st_ino == machine.stat().st_ino
    # The computing root's file is linked too.
    assert Path(_calibrated_path(DataRoot.from_any(tmp_path / "a"), MODEL_2D, 3, 32)).samefile(machine)
    # The root keeps its file when the machine's cache is cleared, and loads it without calibrating.
    machine.unlink()
    caplog.clear()
    third = _random_calibrated(other, MODEL_2D, seed=3, size=32)
    assert _same_weights(first, third) and "calibrating" not in caplog.text and kept.is_file()
    assert not any(p.name.startswith(".tmp") for p in kept.parent.iterdir())


def test_a_root_on_another_file_system_gets_a_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _random_calibrated(DataRoot.from_any(tmp_path / "a"), MODEL_2D, seed=3, size=32)

    def cross_device(src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link", dst)

    monkeypatch.setattr(os, "link", cross_device)
    other = DataRoot.from_any(tmp_path / "b")
    second = _random_calibrated(other, MODEL_2D, seed=3, size=32)
    kept, machine = Path(_calibrated_path(other, MODEL_2D, 3, 32)), machine_calibration_path(MODEL_2D, 3, 32)
    assert _same_weights(first, second)
    assert kept.read_bytes() == machine.read_bytes() and not kept.samefile(machine)
    assert [p.name for p in kept.parent.iterdir()] == [kept.name]  # no temp file left by the failed link


def test_a_root_keeps_its_calibration_when_the_machines_copy_is_replaced(tmp_path: Path) -> None:
    """The machine's copy is only ever replaced by rename (a recalibration): the root's link keeps the old
    file, so the features a root already holds and the ones it computes next come from the same weights."""
    root = DataRoot.from_any(tmp_path / "a")
    _random_calibrated(root, MODEL_2D, seed=3, size=32)
    kept, machine = Path(_calibrated_path(root, MODEL_2D, 3, 32)), machine_calibration_path(MODEL_2D, 3, 32)
    before = kept.read_bytes()
    replacement = machine.with_name("replacement")
    replacement.write_bytes(b"another calibration")
    os.replace(replacement, machine)
    assert kept.read_bytes() == before


def test_a_damaged_machine_copy_is_computed_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = _random_calibrated(DataRoot.from_any(tmp_path / "a"), MODEL_2D, seed=3, size=32)
    machine = machine_calibration_path(MODEL_2D, 3, 32)
    machine.write_bytes(machine.read_bytes()[:1000])
    caplog.clear()
    second = _random_calibrated(DataRoot.from_any(tmp_path / "b"), MODEL_2D, seed=3, size=32)
    assert _same_weights(first, second)
    assert "recomputing it" in caplog.text and "calibrating BatchNorm" in caplog.text
    assert len(machine.read_bytes()) > 1000  # rewritten whole


@pytest.mark.parametrize("model", [MODEL_2D, MODEL_3D])
def test_the_same_seed_calibrates_to_the_same_bits_whatever_the_thread_count(
    tmp_path: Path, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BatchNorm's statistics are sums torch splits across threads: calibrated on 2 threads they used to
    differ from 1 thread's in their last bits, and so did every feature after (a machine cache filled by a
    1-thread pytest worker changed `make demo`'s recall)."""
    threads = torch.get_num_threads()
    made = []
    try:
        for n, cache in ((2, "two"), (1, "one")):
            torch.set_num_threads(n)
            root = DataRoot.from_any(tmp_path / cache)
            monkeypatch.setenv("HOWTO_CALIBRATION_CACHE", str(tmp_path / f"machine-{cache}"))  # not copied
            made.append(_random_calibrated(root, model, seed=0, size=32))
            assert torch.get_num_threads() == n  # the caller's setting is given back
    finally:
        torch.set_num_threads(threads)
    assert _same_weights(*made)
