"""howto tasks package."""
