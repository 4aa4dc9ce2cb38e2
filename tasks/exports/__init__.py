"""Exports of a data root: WebDataset tar shards, a Hugging Face dataset, the HowTo100M release layout."""
