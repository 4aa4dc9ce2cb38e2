"""The calibrated random weights are cached per data root: a damaged cache file is recomputed, not fatal."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from storage.layout import DataRoot
from tasks.features.extractor import MODEL_2D
from tasks.features.weights import _calibrated_path, _random_calibrated


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_cache_cut_short_is_recomputed_to_the_same_weights(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = DataRoot.from_any(tmp_path)
    first = _random_calibrated(root, MODEL_2D, seed=3, size=32)
    cache = Path(_calibrated_path(root, MODEL_2D, 3, 32))
    good = cache.read_bytes()
    # (Every other kind of damage is the same NotACheckpoint: tests/models/test_torch_files.py.)
    cache.write_bytes(good[: len(good) // 2])

    again = _random_calibrated(root, MODEL_2D, seed=3, size=32)

    assert _same_weights(first, again)
    assert "recomputing it" in caplog.text and str(cache) in caplog.text
    # The cache was rewritten whole and is read back without recomputing next time.
    caplog.clear()
    third = _random_calibrated(root, MODEL_2D, seed=3, size=32)
    assert _same_weights(first, third) and "recomputing" not in caplog.text
