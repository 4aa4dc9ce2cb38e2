"""Published zero-shot numbers to print beside ours. They were measured with real pretrained weights on
the real benchmarks; ours on the demo (random-weight CNN features, synthetic videos) are not comparable.

Recalls in percent, as the papers print them. Where a figure comes from is said per row; "[paper,
unverified]" means quoted from the paper (or RESEARCH.md quoting it) and not re-run here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    method: str
    metrics: dict[str, float]
    where: str


PUBLISHED: dict[str, tuple[Published, ...]] = {
    "youcook2": (
        Published("HowTo100M (Miech 2019)", {"R@1": 6.1, "R@5": 17.3, "R@10": 24.8, "MedR": 46}, "RESEARCH.md [paper, unverified]"),
        Published("MIL-NCE (Miech 2020, S3D)", {"R@1": 15.1, "R@5": 38.0, "R@10": 51.2, "MedR": 10}, "[paper, unverified]"),
        Published("VideoCLIP (Xu 2021)", {"R@1": 22.7, "R@5": 50.4, "R@10": 63.1}, "paperswithcode [paper, unverified]"),
        Published("MMV FAC (Alayrac 2020)", {"R@10": 45.4, "MedR": 13}, "[paper, unverified]"),
    ),
    "msrvtt": (
        Published("HowTo100M (Miech 2019)", {"R@1": 7.5, "R@5": 21.2, "R@10": 29.6, "MedR": 38}, "RESEARCH.md [paper, unverified]"),
        Published("MIL-NCE (Miech 2020, S3D)", {"R@1": 9.9, "R@5": 24.0, "R@10": 32.4, "MedR": 29.5}, "[paper, unverified]"),
        Published("VideoCLIP (Xu 2021)", {"R@1": 10.4, "R@5": 22.2, "R@10": 30.0}, "paperswithcode [paper, unverified]"),
        Published("MMV FAC (Alayrac 2020)", {"R@10": 31.1, "MedR": 38}, "[paper, unverified]"),
    ),
    "crosstask": (
        Published("HowTo100M (Miech 2019)", {"recall": 33.6}, "RESEARCH.md [paper, unverified]"),
        Published("CrossTask weakly supervised (Zhukov 2019)", {"recall": 31.6}, "RESEARCH.md [paper, unverified]"),
        Published("MIL-NCE (Miech 2020, S3D)", {"recall": 40.5}, "RESEARCH.md [paper, unverified]"),
        Published("VideoCLIP zero-shot (Xu 2021)", {"recall": 33.9}, "[paper, unverified]"),
    ),
}  # fmt: skip

NOTE = "published: real pretrained weights on the real benchmark data (not comparable with a demo run)"
