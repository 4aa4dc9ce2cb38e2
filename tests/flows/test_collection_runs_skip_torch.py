"""A run of the collection stages never loads torch: importing it (and torchvision) costs ~5 s of CPU at every
start on a 2-core machine, paid by each scheduled re-crawl and each `collect` deployment run for nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.deploy.prefect_procs import ROOT

PROBE = """
import sys
from flows.cli_pipeline import _demo_base
from flows.pipeline import check_stage_weights
from flows.pipeline_config import PipelineConfig

assert _demo_base(None) is None
cfg = PipelineConfig().model_copy(update={{"features": PipelineConfig().features.model_copy(
    update={{"random_weights": True}})}})
check_stage_weights(cfg, {stages!r})
print("torch" in sys.modules, "torchvision" in sys.modules)
"""


@pytest.mark.parametrize(
    ("stages", "loaded"),
    [(["tasks", "search", "captions"], "False False"), (["tasks", "audio"], "True False")],
    ids=["collection", "with-audio"],
)
def test_the_pipeline_loads_torch_only_for_a_stage_that_needs_it(stages: list[str], loaded: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(stages=stages)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == loaded
