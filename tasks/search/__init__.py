"""Search stage: task shards -> search hits -> probed, kept or dropped videos (plans, shard tasks, re-crawl
records, kept info files). YouTube itself is reached through the client in tasks/youtube."""
