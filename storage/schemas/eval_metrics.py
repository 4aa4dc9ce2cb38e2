"""Schema of `eval_metrics`: one row per metric of one evaluation of a checkpoint on one benchmark split."""

import pyarrow as pa

NAME = "eval_metrics"
VERSION = 1
SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("checkpoint", pa.string(), nullable=False),  # path of the checkpoint file evaluated
        pa.field("benchmark", pa.string(), nullable=False),  # youcook2 | msrvtt | crosstask | heldout
        pa.field("split", pa.string(), nullable=False),  # validation, test, 1k-A, val, ...
        pa.field("metric", pa.string(), nullable=False),  # R@1, MedR, recall, recall:<task>, ...
        pa.field("value", pa.float64(), nullable=False),  # recalls as fractions 0..1, ranks 1-based
        pa.field("n", pa.int64(), nullable=False),  # queries ranked, or steps counted (CrossTask)
        pa.field("tie_rule", pa.string()),  # "against" (ours) or "optimistic"; null where ties cannot occur
        pa.field("source", pa.string(), nullable=False),  # which files: annotations, features, release dir
    ]
)
