"""Tasks stage: mine wikiHow (or import a task list) into the `tasks` dataset (config, rows, shard tasks).
wikiHow itself is read through the client, parser and filters in tasks/wikihow."""
