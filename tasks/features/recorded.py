"""The features config a data root's `frame_features` shards were made with, as their markers record it.

Benchmark videos and stale runs are judged against it: features of other weights, sizes or precision are
other vectors, and a model scores them as noise."""

from __future__ import annotations

from storage.layout import DataRoot
from storage.shards import list_markers

# The config fields a features marker records (what decides the rows; the config hash covers them).
DATA_FIELDS = frozenset(
    {"models", "random_weights", "calibration_seed", "short_side_2d", "size_3d", "precision"}
)
# ...and with the weight files, what makes two extractions give the same vectors.
VECTOR_FIELDS = DATA_FIELDS | {"resnet_weights", "resnext_weights"}


def recorded_features_config(root: DataRoot) -> dict[str, object]:
    """The data-deciding fields the data root's `frame_features` were made with (first marker that
    records them), so benchmark videos get the features the model was trained on; {} if none do."""
    for marker in list_markers(root, "frame_features"):
        if marker.config:
            return {k: v for k, v in marker.config.items() if k in VECTOR_FIELDS}
    return {}
