"""Schema of `train_metrics`: one row per finished epoch of a training run (one shard per run)."""

import pyarrow as pa

NAME = "train_metrics"
VERSION = 1
SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("epoch", pa.int32(), nullable=False),  # 1-based
        pa.field("loss", pa.float64(), nullable=False),  # mean training loss over the epoch's pairs
        pa.field("r_at_1", pa.float64(), nullable=False),  # held-out text->video recall, 0..1
        pa.field("r_at_5", pa.float64(), nullable=False),
        pa.field("r_at_10", pa.float64(), nullable=False),
        pa.field("median_rank", pa.float64(), nullable=False),  # ties counted against the model
        pa.field("candidates", pa.int64(), nullable=False),  # held-out clips ranked per query
        pa.field("train_pairs", pa.int64(), nullable=False),
        pa.field("lr", pa.float64(), nullable=False),
        pa.field("epoch_s", pa.float64(), nullable=False),
        pa.field("load_s", pa.float64(), nullable=False),  # part of epoch_s spent waiting for batches
    ]
)
