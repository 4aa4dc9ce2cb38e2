"""Synthetic inputs for tests and benchmarks (generated captions, feature tables); not pipeline work."""
