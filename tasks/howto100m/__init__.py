"""The published HowTo100M release (HowTo100M_v1.csv, task_ids.csv, caption.json, per-video .npy) in and out."""
