"""Stage 5: training pairs from Parquet, cached text embeddings, the joint-embedding training run."""
