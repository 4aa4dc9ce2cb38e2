"""Recorded evaluations on an s3:// data root (moto's server on loopback): a checkpoint rewritten under the same
name is scored anew there too, as on a local root, not answered with the scores of the file it replaced."""

from __future__ import annotations

from pathlib import Path

from storage.layout import DataRoot
from tasks.evaluation.embedder import CheckpointRef
from tasks.evaluation.results import record
from tasks.evaluation.scoring import Scores
from tests.moto_s3 import moto_s3

BUCKET = "howto-eval"


def test_a_checkpoint_rewritten_on_s3_is_scored_anew(tmp_path: Path) -> None:
    with moto_s3(tmp_path / "moto.log", BUCKET):
        root = DataRoot.from_any(f"s3://{BUCKET}/root")
        path = root.path("train", "run-x", "checkpoints", "epoch-1.pt")
        scored: list[float] = []

        def evaluate(value: float) -> float | None:
            """Record an evaluation whose scoring would give R@1 = `value`; returns the R@1 recorded."""

            def compute() -> Scores:
                scored.append(value)
                scores = Scores()
                scores.add("R@1", value, 10, "against")
                return scores

            result = record(root, CheckpointRef(path, "run-x"), "heldout", "heldout-0.1", "src", {}, compute)
            return result.value("R@1")

        with root.open(path, "wb") as handle:
            handle.write(b"first model")
        assert evaluate(0.25) == 0.25
        assert evaluate(0.75) == 0.25  # the same file: read back, not scored
        with root.open(path, "wb") as handle:  # the run trained again under its name: same size, new bytes
            handle.write(b"other model")
        assert evaluate(0.5) == 0.5
        assert scored == [0.25, 0.5]
