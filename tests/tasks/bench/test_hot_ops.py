"""`howto bench features --profile`: a batch's hottest ops with their shapes, ranked by own time."""

from __future__ import annotations

import torch
from torch import nn
from typer.testing import CliRunner

from flows.cli import app
from tasks.bench.hot_ops import hot_ops


def test_the_heaviest_op_comes_first_with_its_shapes_and_share() -> None:
    torch.manual_seed(0)
    heavy = nn.Conv2d(16, 64, 5, padding=2).eval()
    light = nn.Conv2d(64, 4, 1).eval()
    x = torch.randn(4, 16, 64, 64)
    with torch.inference_mode():
        total, ops = hot_ops(lambda: light(torch.relu(heavy(x))), top=3)
    assert total > 0 and 1 <= len(ops) <= 3
    first = ops[0]
    assert "conv" in first.name and first.calls == 1
    assert (4, 16, 64, 64) in first.shapes and (64, 16, 5, 5) in first.shapes  # input and weight
    assert all(0 < op.share <= 1 for op in ops) and sum(op.share for op in ops) <= 1.0 + 1e-9
    assert [op.seconds for op in ops] == sorted((op.seconds for op in ops), reverse=True)
    assert "4x16x64x64 64x16x5x5" in first.line() and "%" in first.line()


def test_profile_is_for_the_cpu_bench() -> None:
    result = CliRunner().invoke(app, ["bench", "features", "--device", "cuda", "--profile"])
    assert result.exit_code == 2
    assert "--profile lists a CPU batch's ops: use it with --device cpu" in result.output
