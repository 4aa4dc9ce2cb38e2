"""Captions stage: WebVTT parsing and cleaning, clip cutting, and the shard task."""
