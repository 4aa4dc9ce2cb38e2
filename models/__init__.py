"""howto models package."""
