"""The calibrated random weights are cached per data root: a damaged cache file is recomputed, not fatal."""

from __future__ import annotations

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
    # The new root keeps its own copy: it stays whole if the machine's cache is cleared.
    assert (
        Path(_calibrated_path(other, MODEL_2D, 3, 32)).read_bytes()
        == machine_calibration_path(MODEL_2D, 3, 32).read_bytes()
    )


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
