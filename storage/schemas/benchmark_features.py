"""Schema of `benchmark_features`: frame features of benchmark videos (YouCook2, MSR-VTT, CrossTask).

The same rows as `frame_features` (same extractor, same contract), kept apart so that benchmark videos
never enter training pairs.
"""

from storage.schemas.frame_features import SCHEMA as FRAME_FEATURES

NAME = "benchmark_features"
VERSION = 1
SCHEMA = FRAME_FEATURES
