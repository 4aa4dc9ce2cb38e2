"""Rows that are numpy arrays or tensors: concatenation, padding and where they live."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.frame_rows import concat_rows, on_device, pad_with_zeros


def test_numpy_rows_stay_numpy_and_a_tensor_makes_the_batch_a_tensor() -> None:
    a, b = np.ones((2, 3), np.uint8), np.full((1, 3), 2, np.uint8)
    joined = concat_rows([a, b])
    assert isinstance(joined, np.ndarray) and joined.tolist() == [[1, 1, 1], [1, 1, 1], [2, 2, 2]]
    mixed = concat_rows([torch.from_numpy(a), b])
    assert isinstance(mixed, torch.Tensor) and mixed.tolist() == joined.tolist()
    assert concat_rows([a]) is a


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_padding_appends_zero_rows_of_the_same_kind(kind: str) -> None:
    rows = np.arange(6, dtype=np.uint8).reshape(2, 3)
    given = rows if kind == "numpy" else torch.from_numpy(rows)
    padded = pad_with_zeros(given, 4)
    assert type(padded) is type(given) and len(padded) == 4
    assert np.asarray(padded)[2:].sum() == 0 and np.array_equal(np.asarray(padded)[:2], rows)
    assert pad_with_zeros(given, 2) is given


def test_where_rows_live() -> None:
    cpu = torch.device("cpu")
    assert on_device(torch.zeros(1), cpu)
    assert not on_device(np.zeros(1), cpu)
    assert not on_device(torch.zeros(1), torch.device("meta"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="an unindexed CUDA device needs a GPU")
def test_a_tensor_on_the_current_gpu_is_on_cuda_without_an_index() -> None:
    rows = torch.zeros(1, device="cuda")
    assert rows.device.index is not None and rows.device != torch.device("cuda")
    assert on_device(rows, torch.device("cuda")) and on_device(rows, rows.device)
