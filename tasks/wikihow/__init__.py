"""wikiHow client, category walk, article parser and visual-task filter, shared by the tasks stage."""
