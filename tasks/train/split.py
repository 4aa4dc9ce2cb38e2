"""Held-out videos chosen by a hash of the video id: stable across runs, machines and data growth."""

from __future__ import annotations

import hashlib

SPLIT_SALT = "howto-heldout-v1"


def heldout_score(video_id: str, salt: str = SPLIT_SALT) -> float:
    """A number in [0, 1) fixed by the video id alone."""
    digest = hashlib.sha1(f"{salt}:{video_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_heldout(video_id: str, fraction: float, salt: str = SPLIT_SALT) -> bool:
    """True for the videos kept out of training; adding videos never moves an old one across."""
    return heldout_score(video_id, salt) < fraction
