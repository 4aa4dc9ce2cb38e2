"""The demo world: a seeded local stand-in for wikiHow and YouTube, served on 127.0.0.1."""
