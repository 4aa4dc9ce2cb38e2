"""Stage 1: wikiHow client, article parser, visual-task filter, task-list imports and the mining shard task."""
